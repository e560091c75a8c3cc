package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/edge/packethint"
)

// StatusClientGone is nginx's 499: the client left before the response.
const StatusClientGone = 499

// Header is one proxy_set_header: Value "" removes the header.
type Header struct{ Name, Value string }

// HandlerOptions are a proxy location's settings.
type HandlerOptions struct {
	// SetHeaders are applied last, after the X-Forwarded-* and Forwarded
	// headers: Value "" deletes, "Host" sets the Host sent upstream.
	SetHeaders []Header
	// Buffering reads the whole request body before the first attempt
	// (memory up to 1 MiB, then a temp file), so it can be retried and a
	// slow upload never holds a server connection. Off streams it.
	Buffering bool
	// TrustedProxies are peers whose X-Forwarded-*/Forwarded headers are
	// believed (appended to) and whose X-Forwarded-For resolves the
	// client IP for ip_hash. Others get theirs replaced.
	TrustedProxies []netip.Prefix
	// SpoolDir holds spilled request bodies; "" is os.TempDir().
	SpoolDir string
	// Log gets proxy errors; nil uses the group's logger.
	Log *zap.Logger
	// Expand substitutes $variables in SetHeaders values; nil = literal.
	Expand func(value string, r *http.Request) string
}

// Handler proxies requests to a Group. Build one per proxy location
// with Group.Handler; it is safe for concurrent use.
type Handler struct {
	g    *Group
	opts HandlerOptions
	log  *zap.Logger
	rp   *httputil.ReverseProxy
	host *Header // proxy_set_header Host, or nil to pass the client's through
}

// Handler returns a handler that proxies to g with opts.
func (g *Group) Handler(opts HandlerOptions) *Handler {
	opts.SetHeaders = slices.Clone(opts.SetHeaders)
	opts.TrustedProxies = slices.Clone(opts.TrustedProxies)
	h := &Handler{g: g, opts: opts, log: g.log}
	if opts.Log != nil {
		h.log = opts.Log.With(zap.String("upstream", displayName(g.name)))
	}
	for i := range h.opts.SetHeaders {
		sh := &h.opts.SetHeaders[i]
		sh.Name = http.CanonicalHeaderKey(sh.Name)
		if sh.Name == "Host" {
			h.host = sh
		}
	}
	stdlog, err := zap.NewStdLogAt(h.log, zap.WarnLevel)
	if err != nil {
		stdlog = zap.NewStdLog(h.log)
	}
	// A body cut short is logged by exchange.bodyFailed, with the
	// server and URI; ReverseProxy's own line for it has neither.
	stdlog = log.New(dropLines{next: stdlog.Writer(), prefix: "httputil: ReverseProxy read error during body copy"}, "", 0)
	h.rp = &httputil.ReverseProxy{
		Rewrite:   h.rewrite,
		Transport: retrier{},
		// ReverseProxy flushes every write of a response without a
		// length (chunked streams, long polling) and of Server-Sent
		// Events on its own; trackingWriter.FlushError trims those
		// flushes. A response with a Content-Length is not a stream and
		// goes through net/http's buffer unflushed (0 here), without
		// the per-response timer goroutine a flush interval starts.
		FlushInterval: 0,
		ErrorHandler:  h.handleError,
		ErrorLog:      stdlog,
		BufferPool:    newBufferPool(),
	}
	return h
}

// exchange is one client request's state across its attempts.
type exchange struct {
	h       *Handler
	in      *http.Request // as served, with the exchange in its context
	log     *zap.Logger
	tw      trackingWriter
	peer    netip.Addr // immediate peer; invalid for unix-socket clients
	trusted bool       // peer is in TrustedProxies
	keyHash uint64
	hasKey  bool
	spool   *spool      // buffered body, or nil
	stream  *streamBody // streamed body, or nil
	status  int         // set by handleError when Serve must answer

	bodyErrLogged bool // bodyFailed has logged; the copy runs on one goroutine

	triedBuf [4]*backend
}

type exchangeKey struct{}

// ServeHTTP serves r, answering errors with a plain status body.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if status := h.Serve(w, r); status != 0 {
		http.Error(w, http.StatusText(status), status)
	}
}

// Serve proxies one request. It returns 0 when it wrote the response
// (or the upgraded connection ended), otherwise a status it did not
// write so the caller can (error_page may take over): 502 the server
// failed or answered badly, 504 connect or first-byte timeout, 499 the
// client left, 413/408/400 the request body could not be read, 500 the
// body could not be spooled. Once the response head is sent, a failure
// mid-body aborts the connection with panic(http.ErrAbortHandler), as
// httputil.ReverseProxy does, so the client sees a truncated response.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request) int {
	ex := &exchange{h: h, log: h.log}
	ex.peer = peerAddr(r.RemoteAddr)
	ex.trusted = h.isTrusted(ex.peer)
	ex.keyHash, ex.hasKey = h.hashKey(r, ex)
	if hasBody(r) {
		if h.opts.Buffering || (r.ContentLength < 0 && h.g.needsLength) {
			sp, err := readSpool(r.Body, r.ContentLength, h.opts.SpoolDir)
			if err != nil {
				return BodyStatus(h.log, r, err)
			}
			defer sp.close()
			ex.spool = sp
		} else {
			ex.stream = &streamBody{r: r.Body}
		}
	}
	ex.in = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
	ex.tw.ResponseWriter = w
	ex.tw.req = r
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler && r.Context().Err() == nil {
				// ReverseProxy wrote what the server sent before it broke
				// off, but it is still in net/http's buffer: the client
				// gets it, then the cut, as from nginx, rather than an
				// empty reply.
				_ = http.NewResponseController(w).Flush()
			}
			panic(v)
		}
	}()
	h.rp.ServeHTTP(&ex.tw, ex.in)
	return ex.status
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// BodyStatus maps a failure to read or spool a request body to the status
// to answer, logging what is worth logging: 499 the client left, 413 over
// the size limit, 408 too slow, 400 a BodyReadError, else 500 (a local
// failure such as a full disk, logged as an error).
func BodyStatus(log *zap.Logger, r *http.Request, err error) int {
	var tooBig *http.MaxBytesError
	var ne net.Error
	var bre *BodyReadError
	// A timeout comes first: net/http cancels the request's context on
	// any read error, so a body that stalled past body_timeout would
	// otherwise pass for a client that left.
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout
	case r.Context().Err() != nil:
		return StatusClientGone
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &bre):
		log.Info("reading request body", zap.String("uri", r.RequestURI), zap.Error(err))
		return http.StatusBadRequest
	}
	log.Error("buffering request body", zap.String("uri", r.RequestURI), zap.Error(err))
	return http.StatusInternalServerError
}

// hashKey is the request's key for the hash policies.
func (h *Handler) hashKey(r *http.Request, ex *exchange) (uint64, bool) {
	switch h.g.cfg.Balance {
	case BalanceIPHash:
		ip := clientIP(r, ex.peer, ex.trusted, h.opts.TrustedProxies)
		if !ip.IsValid() {
			return 0, false
		}
		b := ip.As16()
		return hashBytes(b[:]), true
	case BalanceHeader:
		if v := r.Header.Get(h.g.cfg.BalanceKey); v != "" {
			return hashString(v), true
		}
	case BalanceCookie:
		if c, err := r.Cookie(h.g.cfg.BalanceKey); err == nil && c.Value != "" {
			return hashString(c.Value), true
		}
	}
	return 0, false
}

// rewrite shapes the outgoing request. ReverseProxy has already removed
// hop-by-hop headers (RFC 9110 §7.6.1, keeping an Upgrade) and the
// client's Forwarded and X-Forwarded-* headers; the URL's scheme and
// host are set per attempt by the retrier.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	ex, _ := in.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		return // RoundTrip refuses it
	}
	// The URI goes upstream as the client sent it; ReverseProxy's
	// cleanup of unparsable query parameters is for proxies that parse
	// the query, which this one does not.
	out.URL.RawQuery = in.URL.RawQuery
	// Header names with "_" are dropped, as nginx does by default: WSGI
	// servers map "X_Forwarded_For" and "X-Forwarded-For" to the same
	// HTTP_X_FORWARDED_FOR, so a client could smuggle a forwarded value
	// past the one set below.
	for name := range out.Header {
		if strings.IndexByte(name, '_') >= 0 {
			delete(out.Header, name)
		}
	}
	setForwarded(out.Header, in, ex.peer, ex.trusted)
	if h.opts.Buffering {
		// The client already got its 100 Continue (the body was read).
		out.Header.Del("Expect")
	}
	for _, sh := range h.opts.SetHeaders {
		v := sh.Value
		if v != "" && h.opts.Expand != nil {
			v = h.opts.Expand(v, in)
		}
		switch {
		case sh.Name == "Host":
			// "" leaves Host empty, so the server's own address is sent.
			out.Host = v
		case v == "":
			out.Header.Del(sh.Name)
		default:
			out.Header.Set(sh.Name, v)
		}
	}
}

// handleError records the status for Serve to return instead of
// writing it, so the edge's error_page can answer. ReverseProxy calls
// it before any of the response is written, except after a hijack,
// when nothing more can be sent at all.
func (h *Handler) handleError(w http.ResponseWriter, r *http.Request, err error) {
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		h.log.Error("proxy error", zap.Error(err))
		http.Error(w, http.StatusText(http.StatusBadGateway), http.StatusBadGateway)
		return
	}
	status, server := http.StatusBadGateway, ""
	var ae *attemptError
	if errors.As(err, &ae) {
		status, server = ae.status, ae.server
	}
	if ex.in.Context().Err() != nil {
		status = StatusClientGone
		h.log.Debug("client left before the upstream answered", zap.String("server", server),
			zap.String("uri", ex.in.RequestURI), zap.Error(err))
	} else {
		h.log.Error("upstream request failed", zap.String("server", server), zap.Int("status", status),
			zap.String("method", ex.in.Method), zap.String("uri", ex.in.RequestURI), zap.String("cause", causeOf(err)))
	}
	if ex.tw.wrote {
		return // hijacked: the connection is closed by ReverseProxy
	}
	ex.status = status
}

// bodyFailed logs, once per request, a response body that failed after
// its head was sent: the client gets a truncated response (ReverseProxy
// aborts the connection), and the log says which server and request.
func (ex *exchange) bodyFailed(server string, err error) {
	if ex.bodyErrLogged {
		return
	}
	ex.bodyErrLogged = true
	if ex.in.Context().Err() != nil {
		ex.log.Debug("client left during the upstream response", zap.String("server", server),
			zap.String("uri", ex.in.RequestURI), zap.Error(err))
		return
	}
	ex.log.Error("upstream response cut short; client connection aborted", zap.String("server", server),
		zap.String("method", ex.in.Method), zap.String("uri", ex.in.RequestURI), zap.String("cause", err.Error()))
}

// dropLines is a log writer that drops the lines starting with prefix.
type dropLines struct {
	next   io.Writer
	prefix string
}

func (d dropLines) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte(d.prefix)) {
		return len(p), nil
	}
	return d.next.Write(p)
}

// causeOf is the underlying error text, without the server prefix that
// is logged as its own field.
func causeOf(err error) string {
	var ae *attemptError
	if errors.As(err, &ae) {
		return ae.err.Error()
	}
	return err.Error()
}

// trackingWriter notes whether the response has started, so an error
// after that point is not reported as a status to write. Unwrap keeps
// the rest of the ResponseWriter reachable through
// http.ResponseController.
//
// It also decides which of ReverseProxy's flushes reach the client.
// ReverseProxy flushes the head on its own and then after every write of
// a streamed (chunked) body; for a small response that arrived whole, that
// is three writes to the client where one does. So a flush is skipped when
// the body is known to be complete (the end follows at once) and when
// nothing of the body has been written yet (the head goes out with the
// first bytes), except for Server-Sent Events, whose clients wait for the
// head. Streams still reach the client chunk by chunk.
type trackingWriter struct {
	http.ResponseWriter
	req       *http.Request // the client's request, for packet hints
	wrote     bool
	wroteBody bool
	body      *respBody // the answering attempt's body; nil before a response
	sse       bool      // the response is text/event-stream
}

// FlushError is what http.ResponseController.Flush calls.
func (t *trackingWriter) FlushError() error {
	if t.body != nil && !t.sse && (!t.wroteBody || t.body.eof.Load()) {
		return nil
	}
	return http.NewResponseController(t.ResponseWriter).Flush()
}

func (t *trackingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		t.wrote = true
		t.hintPackets(code)
	}
	t.ResponseWriter.WriteHeader(code)
}

// hintPackets tells the client's connection that a response with a body
// larger than net/http's buffer is written in more than one piece, so the
// head does not leave in a short packet of its own (packethint).
func (t *trackingWriter) hintPackets(code int) {
	if t.req == nil || t.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified {
		return
	}
	cl := t.Header()["Content-Length"]
	if len(cl) != 1 || len(cl[0]) < 4 {
		return // absent, or under 1000 bytes
	}
	if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n > packethint.MinBody {
		packethint.MoreFollows(t.req)
	}
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	t.wrote = true
	t.wroteBody = true
	return t.ResponseWriter.Write(p)
}

func (t *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	t.wrote = true
	return http.NewResponseController(t.ResponseWriter).Hijack()
}

func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// bufferPool recycles ReverseProxy's 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	bp := &bufferPool{}
	bp.p.New = func() any { b := make([]byte, 32<<10); return &b }
	return bp
}

func (bp *bufferPool) Get() []byte  { return *bp.p.Get().(*[]byte) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

var _ http.Handler = (*Handler)(nil)
