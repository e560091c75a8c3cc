package appserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tandem-server/tandem/conf"
)

// The request path to command workers. A command worker is an HTTP server
// that serves many requests at once (uvicorn, Node), so, unlike the
// worker-protocol path in proxy.go:
//
//   - The request body streams to the worker as the client sends it (an
//     async server copes with a slow client; the edge's
//     client_max_body_size still applies), and the response streams back
//     as the worker writes it: net/http/httputil.ReverseProxy over a
//     keep-alive connection pool per worker, flushing at once for
//     server-sent events and responses without a length.
//   - WebSocket and other upgrades pass through; the tunnel counts as a
//     request in flight on its worker until it closes.
//   - `timeout` bounds the wait for the response head. Past it the client
//     gets 504 and the request is logged; the worker is not killed, since
//     it is serving other requests.
//   - A worker that refuses the connection never saw the request: it is
//     taken out of dispatch (it is dead or about to be, see
//     proxyFailed) and the request goes to another worker, up to
//     proxyAttempts in all. This is what keeps a kill -9 from failing
//     more than the requests in flight on the dead worker.
//   - A worker that dies mid-request fails the requests in flight on it:
//     502, or a cut connection once the response has begun. Its exit is
//     reaped and it is replaced like any crashed worker.

// proxyAttempts bounds how many workers a request is offered to when
// workers refuse its connection.
const proxyAttempts = 3

// idleConnTimeout closes idle keep-alive connections to a worker before
// the 5 s keep-alive timeout of uvicorn and Node does, so a request is
// rarely sent on a connection the worker is closing at the same moment.
const idleConnTimeout = 4 * time.Second

// maxIdlePerWorker bounds the idle keep-alive connections kept per worker.
const maxIdlePerWorker = 256

// backend is one command worker's HTTP endpoint: its address and the
// keep-alive connection pool and reverse proxy every request on that
// worker shares (both are safe for concurrent use).
type backend struct {
	target    target
	transport *http.Transport
	proxy     *httputil.ReverseProxy
}

func newBackend(t target, app *conf.App, log *zap.Logger, id int) *backend {
	b := &backend{target: t}
	b.transport = &http.Transport{
		DialContext:           b.dial,
		MaxIdleConnsPerHost:   maxIdlePerWorker,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: app.Timeout,
		// Pass Accept-Encoding and the encoded body through untouched.
		DisableCompression: true,
	}
	// ReverseProxy reports failures it cannot return (a response body cut
	// short after its head was sent) through ErrorLog.
	errLog, err := zap.NewStdLogAt(log.With(zap.String("app", app.Name), zap.Int("worker", id)), zapcore.WarnLevel)
	if err != nil {
		errLog = nil // the standard logger: never happens with a valid level
	}
	b.proxy = &httputil.ReverseProxy{
		Rewrite:      rewriteForWorker,
		Transport:    b.transport,
		ErrorHandler: recordProxyError,
		ErrorLog:     errLog,
	}
	return b
}

// dial connects to the worker; its errors are marked, because a request
// whose connection failed was never seen by the worker.
func (b *backend) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, b.target.network, b.target.addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	return c, nil
}

// closeIdle closes the idle keep-alive connections: when the worker is
// told to stop (so it is not kept waiting on them) and once it is reaped.
func (b *backend) closeIdle() { b.transport.CloseIdleConnections() }

// dialError is a failed connection to a worker.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect to worker: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// rewriteForWorker builds the request to the worker: the client's method,
// path, query, headers (hop-by-hop ones removed by ReverseProxy, the
// upgrade token kept) and Host, plus X-Forwarded-For (the client address;
// any X-Forwarded-* or Forwarded the client sent is dropped, so the app
// cannot be fooled by one), X-Forwarded-Host and X-Forwarded-Proto.
func rewriteForWorker(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "localhost" // the Host header when the client sent none; dial ignores it
	pr.Out.Host = pr.In.Host
	// The edge already answered the client's 100-continue when the body
	// was first read; the worker must not answer it again.
	pr.Out.Header.Del("Expect")
	pr.SetXForwarded()
}

// proxyErrKey carries a *proxyErr in the outgoing request's context, for
// recordProxyError.
type proxyErrKey struct{}

type proxyErr struct{ err error }

// recordProxyError is ReverseProxy's ErrorHandler. It writes nothing: the
// failure goes back to proxy, which decides between another worker and a
// status for the edge to answer (its error_page).
func recordProxyError(_ http.ResponseWriter, r *http.Request, err error) {
	if pe, ok := r.Context().Value(proxyErrKey{}).(*proxyErr); ok {
		pe.err = err
	}
}

// serveCommand serves r on command workers (see above and Serve).
func (p *Pool) serveCommand(w http.ResponseWriter, r *http.Request) int {
	for attempt := 1; ; attempt++ {
		wk, _, err := p.acquire(r.Context(), acquireQueue, nil)
		if err != nil {
			return p.unavailable(w, r, err)
		}
		if wk.http == nil {
			// A reload switched the app to Python workers meanwhile.
			p.release(wk, outcomeOK)
			return p.serveWire(w, r)
		}
		status, again := p.proxy(wk, w, r)
		if !again || attempt == proxyAttempts {
			return status
		}
	}
}

// proxy sends r to command worker wk and streams the response to w. It
// returns 0 when it wrote the response, else a status for Serve to
// return, and whether the worker never saw the request (so another may
// take it).
func (p *Pool) proxy(wk *worker, w http.ResponseWriter, r *http.Request) (status int, again bool) {
	out := outcomeOK
	// Deferred: ReverseProxy panics with http.ErrAbortHandler when a
	// response breaks after its head was sent, and the worker must still
	// be given back.
	defer func() { p.release(wk, out) }()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler && r.Context().Err() == nil {
				// What the worker sent is still in net/http's buffer:
				// the client gets it, then the cut, as from nginx, rather
				// than an empty reply.
				_ = http.NewResponseController(w).Flush()
			}
			panic(v)
		}
	}()
	var pe proxyErr
	req := r.WithContext(context.WithValue(r.Context(), proxyErrKey{}, &pe))
	var guard *bodyGuard
	if r.Body != nil && r.Body != http.NoBody {
		guard = &bodyGuard{r: r.Body}
		req.Body = guard
	}
	wk.http.proxy.ServeHTTP(w, req)
	if pe.err == nil {
		return 0, false
	}
	status, out, again = p.proxyFailed(wk, r, pe.err)
	if again && guard != nil && guard.read.Load() {
		again = false // never send a body twice
	}
	return status, again
}

// proxyFailed classifies a failed request to wk: the status for the
// client, how the worker is released, and whether another worker may
// take the request.
func (p *Pool) proxyFailed(wk *worker, r *http.Request, err error) (int, outcome, bool) {
	var de *dialError
	var mb *http.MaxBytesError
	var ne net.Error
	fields := []zap.Field{zap.String("app", p.name), zap.Int("worker", wk.id), zap.Int("pid", wk.pid),
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err)}
	switch {
	case r.Context().Err() != nil:
		return statusClientGone, outcomeOK, false
	case errors.As(err, &de):
		out := outcomeOK // busy (EAGAIN: its accept backlog is full): just try another
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			// Nothing listens any more: it died (its exit is on the
			// way) or closed its socket; retire it either way.
			out = outcomeCrash
		}
		p.log.Warn("command worker refused a connection; trying another", fields...)
		return http.StatusBadGateway, out, true
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge, outcomeOK, false
	case errors.As(err, &ne) && ne.Timeout():
		p.log.Warn("request timed out; answered 504, the worker keeps serving",
			append(fields, zap.Duration("timeout", wk.gen.app.Timeout))...)
		return http.StatusGatewayTimeout, outcomeOK, false
	}
	p.log.Error("worker connection failed mid-request", fields...)
	return http.StatusBadGateway, outcomeOK, false
}

// bodyGuard hands the client's body to one attempt without letting
// ReverseProxy close it, and records whether any of it was read: a body
// read even in part is never sent to another worker.
type bodyGuard struct {
	r    io.Reader
	read atomic.Bool // the transport reads on its own goroutine
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	g.read.Store(true)
	return g.r.Read(p)
}

func (g *bodyGuard) Close() error { return nil }

// proxySpooled serves on command worker wk a request whose body was
// already read into s.
func (p *Pool) proxySpooled(wk *worker, w http.ResponseWriter, r *http.Request, s *spool) int {
	req, err := spooledRequest(r, s)
	if err != nil {
		p.release(wk, outcomeOK)
		p.log.Error("reading spooled request body", zap.String("app", p.name), zap.Error(err))
		return http.StatusInternalServerError
	}
	status, _ := p.proxy(wk, w, req)
	return status
}

// spooledRequest is r with a body the worker-protocol path already read
// into s (nil: empty), for a request that ends up on a command worker.
func spooledRequest(r *http.Request, s *spool) (*http.Request, error) {
	r2 := r.WithContext(r.Context())
	r2.Body, r2.ContentLength = http.NoBody, 0
	if s != nil {
		rd, err := s.Reader()
		if err != nil {
			return nil, err
		}
		r2.Body, r2.ContentLength = io.NopCloser(rd), s.Len()
	}
	r2.TransferEncoding = nil // the length is known now
	return r2, nil
}
