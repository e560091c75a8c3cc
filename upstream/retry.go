package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
)

// Retry rules, in one place:
//
//   - A request that never reached a server (connect refused or timed
//     out, TLS handshake failed) is retried on another server, whatever
//     its method: nothing was sent. A streamed body must also be
//     untouched.
//   - An idempotent request whose response status is in RetryStatus is
//     retried on another server and that response discarded, when its
//     body can be sent again (none, or buffered).
//   - Anything else that was sent is never retried: a POST that reached
//     a server may have had its effect.
//
// Each server is tried at most once per request, so a request makes at
// most len(servers) attempts.

// idempotent methods per RFC 9110 §9.2.2.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// attemptError is a failed attempt: the server, the status the client
// should get and whether the request never reached the server.
type attemptError struct {
	server     string
	status     int
	neverSent  bool
	clientGone bool
	err        error
}

func (e *attemptError) Error() string { return e.server + ": " + e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// statusFor maps a transport error to the client's status: 504 when a
// timeout expired (connect, TLS handshake, first byte), 502 for
// everything else (refused, reset, malformed response, TLS failure).
func statusFor(err error) int {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// retrier is the ReverseProxy's Transport: it picks a server per attempt
// and applies the retry rules. The request's exchange comes through the
// context, set by Handler.Serve.
type retrier struct{}

var errNoExchange = errors.New("upstream: request did not come through Handler.Serve")

func (retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	ex, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		return nil, errNoExchange
	}
	return ex.roundTrip(req)
}

func (ex *exchange) roundTrip(req *http.Request) (*http.Response, error) {
	g := ex.h.g
	tried := ex.triedBuf[:0]
	b := g.pick(ex.keyHash, ex.hasKey, tried)
	for {
		tried = append(tried, b)
		resp, err := ex.attempt(req, b)
		if err != nil {
			var ae *attemptError
			if !errors.As(err, &ae) || ae.clientGone || !ae.neverSent || !ex.bodyIntact() {
				return nil, err
			}
			next := g.pick(ex.keyHash, ex.hasKey, tried)
			if next == nil {
				return nil, err
			}
			ex.log.Warn("upstream attempt failed, retrying on another server", zap.String("server", b.url),
				zap.String("next", next.url), zap.String("cause", ae.err.Error()), zap.String("uri", ex.in.RequestURI))
			b = next
			continue
		}
		if !g.retryStatus.has(resp.StatusCode) || !idempotent(req.Method) || ex.stream != nil {
			return resp, nil
		}
		next := g.pick(ex.keyHash, ex.hasKey, tried)
		if next == nil {
			return resp, nil // nobody left to ask: this answer is the answer
		}
		ex.log.Warn("upstream status retried on another server", zap.String("server", b.url),
			zap.String("next", next.url), zap.Int("status", resp.StatusCode), zap.String("uri", ex.in.RequestURI))
		discard(resp.Body)
		b = next
	}
}

// bodyIntact reports whether the request body can be sent again: none,
// buffered, or streamed but not a byte read yet.
func (ex *exchange) bodyIntact() bool {
	return ex.stream == nil || ex.stream.n.Load() == 0
}

// discard drains a little of an unwanted response so its connection can
// be reused, then closes it.
func discard(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}

// call is one attempt, from pick to the end of its response body.
type call struct {
	ex      *exchange
	b       *backend
	cancel  context.CancelCauseFunc
	reached atomic.Bool // the Transport got a connection (httptrace.GotConn)
	ended   atomic.Bool
	trace   httptrace.ClientTrace
}

// done ends the attempt: it no longer counts as active on its server.
func (c *call) done() {
	if !c.ended.Swap(true) {
		c.ex.h.g.release(c.b)
		c.cancel(nil)
	}
}

// attempt sends req to b once. On success the response body is wrapped
// to end the attempt when closed and to enforce ReadTimeout.
func (ex *exchange) attempt(req *http.Request, b *backend) (*http.Response, error) {
	g := ex.h.g
	c := &call{ex: ex, b: b}
	ctx, cancel := context.WithCancelCause(req.Context())
	c.cancel = cancel
	if b.tr.traced {
		c.trace.GotConn = func(httptrace.GotConnInfo) { c.reached.Store(true) }
		ctx = httptrace.WithClientTrace(ctx, &c.trace)
	}
	out := req.WithContext(ctx)
	u := *req.URL
	u.Scheme, u.Host = b.tr.scheme, b.tr.host
	out.URL = &u
	ex.setBody(out)

	resp, err := b.tr.rt.RoundTrip(out)
	if err != nil {
		c.done()
		ae := &attemptError{server: b.url, status: statusFor(err), err: err}
		ae.neverSent = isDialError(err) || (b.tr.traced && !c.reached.Load())
		if ex.in.Context().Err() != nil {
			ae.clientGone = true
			return nil, ae
		}
		g.recordFailure(b, err.Error())
		return nil, ae
	}
	if g.failStatus.has(resp.StatusCode) {
		g.recordFailure(b, "status "+strconv.Itoa(resp.StatusCode))
	} else {
		g.recordSuccess(b)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
			resp.Body = newTunnelBody(rwc, c, g.cfg.ReadTimeout)
			return resp, nil
		}
	}
	rb := newRespBody(resp.Body, c, g.cfg.ReadTimeout)
	resp.Body = rb
	c.ex.tw.body = rb
	c.ex.tw.sse = strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	return resp, nil
}

// setBody gives an attempt its own body: a fresh reader over the spool,
// or a view of the streamed body that the Transport may close.
func (ex *exchange) setBody(out *http.Request) {
	switch {
	case ex.spool != nil:
		n := ex.spool.size()
		out.ContentLength = n
		out.TransferEncoding = nil
		out.Trailer = nil // a Content-Length body has nowhere to put them
		if n == 0 {
			out.Body, out.GetBody = http.NoBody, nil
			return
		}
		out.Body = ex.spool.reader()
		sp := ex.spool
		out.GetBody = func() (io.ReadCloser, error) { return sp.reader(), nil }
	case ex.stream != nil:
		out.Body = &attemptBody{s: ex.stream}
		out.GetBody = nil
	}
}
