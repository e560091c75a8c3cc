package appserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/appserver/wire"

	"github.com/tandem-server/tandem/edge/packethint"
)

// The request path. A slow client must never hold a worker, so:
//
//   - The request body is read completely at the edge first (memory up to
//     1 MiB, then an unlinked file in the runtime dir); only then is a
//     worker taken. The app sees the body only once it is complete.
//   - The response is read from the worker as fast as it writes. If it is
//     complete in what the worker wrote at once, or declares a
//     Content-Length, it is buffered (memory, then disk), the worker is
//     released at Z, and only then is the client written to.
//   - Trade-off: a response without Content-Length that arrives in several
//     writes (a WSGI generator: server-sent events, progress output,
//     large CSV exports) is streamed instead, each chunk flushed to the
//     client as it arrives, because buffering it would break what the app
//     meant. Such a response holds its worker as long as the client reads
//     slowly; `timeout` still bounds it.

// statusClientGone is nginx's 499: the client left before a response.
const statusClientGone = 499

// inlineBody is the largest request body written to the worker before
// reading its response; larger ones are written by a second goroutine so
// an app that answers without reading its body cannot deadlock us.
const inlineBody = 64 << 10

// ServeHTTP serves r with the pool, answering errors with a plain body.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if status := p.Serve(w, r); status != 0 {
		http.Error(w, http.StatusText(status), status)
	}
}

// Serve handles one request end to end. It returns 0 when it wrote a
// response, or a status it did not write so the caller can answer it
// (error_page): 413 body too large, 408/400 body not readable, 431 header
// too long for the protocol, 503 (Retry-After set on w) no worker in time,
// 502 worker failed, 504 request timeout, 499 client gone. When the
// response head was already sent and the worker failed, it aborts the
// connection with http.ErrAbortHandler, the net/http way to tell the
// client the body is incomplete. Python workers get the request over the
// worker protocol (below); command workers over HTTP (command_proxy.go).
func (p *Pool) Serve(w http.ResponseWriter, r *http.Request) int {
	if p.running.Load() && p.a.httpWorkers.Load() {
		return p.serveCommand(w, r)
	}
	return p.serveWire(w, r)
}

// serveWire serves r on a Python worker over the worker protocol.
func (p *Pool) serveWire(w http.ResponseWriter, r *http.Request) int {
	body, err := p.readBody(r)
	if err != nil {
		return p.bodyStatus(r, err)
	}
	defer body.Close()
	how := acquireQueue
	if body == nil || body.Len() <= pipelineMaxBody {
		how = acquirePipeline
	}
	m := message{r: r, body: body}
	defer m.free()
	for {
		wk, turn, err := p.acquire(r.Context(), how, &m)
		if err != nil {
			return p.unavailable(w, r, err)
		}
		if wk.http != nil {
			// A reload switched the app to command workers meanwhile.
			return p.proxySpooled(wk, w, r, body)
		}
		x := exchange{p: p, wk: wk, rw: w, r: r, body: body, pre: m.bytes()}
		var res result
		if turn != nil {
			p.pipelined.Add(1)
			var again bool
			res, again = x.runBehind(turn)
			switch {
			case again && r.Context().Err() != nil:
				return statusClientGone // it was taken back for that
			case again:
				p.redispatched.Add(1)
				how = acquireRetry // the worker never read it
				continue
			}
		} else {
			res = x.run()
		}
		return p.finishWire(&x, res)
	}
}

// finishWire releases the worker and answers the client.
func (p *Pool) finishWire(x *exchange, res result) int {
	if p.release(x.wk, res.out) {
		// The worker went straight to a queued request. Let that request's
		// goroutine write to it before this one writes its response to the
		// client; otherwise the worker idles through that write and,
		// with one processor (edge/procs), everything else runnable.
		// Measured: 2.45 instead of 2.9 context switches per hello-world
		// request, and 6 % more Flask requests (docs/benchmarks-app.md, after the 21:05 run).
		runtime.Gosched()
	}
	if res.abort {
		panic(http.ErrAbortHandler) // after release: the worker is not lost
	}
	if res.buffered != nil {
		defer res.buffered.Close()
		x.writeBuffered(res)
	}
	return res.status
}

func (p *Pool) readBody(r *http.Request) (*spool, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	s := newSpool(p.mgr.runtimeDir)
	if _, err := s.ReadFrom(r.Body); err != nil {
		s.Close()
		return nil, err
	}
	if s.Len() == 0 {
		s.Close()
		return nil, nil
	}
	return s, nil
}

func (p *Pool) bodyStatus(r *http.Request, err error) int {
	var mb *http.MaxBytesError
	var ne net.Error
	var se *storageError
	switch {
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &se):
		// Before the client checks: a full disk is no client's fault.
		p.log.Error("cannot buffer request body", zap.String("app", p.name), zap.String("uri", r.RequestURI), zap.Error(err))
		return http.StatusInternalServerError
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout
	case r.Context().Err() != nil:
		return statusClientGone
	}
	p.log.Warn("reading request body", zap.String("app", p.name), zap.Error(err))
	return http.StatusBadRequest
}

// unavailable maps a dispatch failure to its status, setting Retry-After
// for 503 as RFC 9110 §10.2.3 suggests for temporary overload.
func (p *Pool) unavailable(w http.ResponseWriter, r *http.Request, err error) int {
	if r.Context().Err() != nil {
		return statusClientGone
	}
	retry := "1"
	if errors.Is(err, ErrUnavailable) {
		retry = "5"
	}
	w.Header().Set("Retry-After", retry)
	p.log.Warn("no worker for request", zap.String("app", p.name), zap.String("path", r.URL.Path), zap.Error(err))
	return http.StatusServiceUnavailable
}

// exchange is one request on one leased worker.
type exchange struct {
	p    *Pool
	wk   *worker
	rw   http.ResponseWriter
	r    *http.Request
	body *spool

	stream uint32
	// wmu serialises writes to the worker between the request writer
	// (sendAndAwait or the body goroutine) and abort; bodyDone, set once
	// E is written, is guarded by it.
	wmu      sync.Mutex
	bodyDone bool
	aborted  atomic.Bool
	once     sync.Once // abort runs once; Do also waits for a running abort
	bodyErr  chan error
	streamed bool   // response head sent to the client
	isSent   bool   // sent ran
	pre      []byte // the request's frames, prebuilt while it was queued; or nil
	// queued: the request came through the worker's queue (pipelined),
	// so when the worker fails, whether it ever read it can be known;
	// unread, set when it did not, so it may go to another worker.
	queued, unread bool

	// Storage the result points into, so a small response costs no
	// allocations of its own beyond one string for its head.
	fields [8]headerField
	resp   respBody
}

// headerField is one response header from the app, canonical name.
type headerField struct{ key, value string }

// result is how the exchange ended.
type result struct {
	out      outcome
	status   int           // for Serve to return (not written)
	abort    bool          // head sent, body incomplete: cut the client
	code     int           // response status, when buffered
	header   []headerField // in the app's order, hop-by-hop fields dropped
	headLen  string        // app's Content-Length for HEAD / bodiless statuses
	buffered *respBody
}

func (x *exchange) run() result {
	c := x.wk.conn
	// One deadline for the whole exchange: `timeout` is per request, as in
	// gunicorn's sync workers. Serve answers 504 itself when it fires; the
	// arbiter's tick is the backstop while Serve is busy writing a
	// streamed response to the client.
	c.SetDeadline(time.Now().Add(x.wk.gen.app.Timeout))
	x.stream = x.wk.nextStream()
	// The deadline is not cleared afterwards: nothing uses an idle
	// worker's connection, and the next request sets its own. That saves
	// two runtime timer updates per request.
	return x.exchange()
}

// sent clears the worker's sending mark once the request is all written
// (or will never be), so a request may be pipelined behind it. Only the
// first call counts: by the next, the mark may be another request's.
func (x *exchange) sent() {
	if !x.isSent {
		x.isSent = true
		x.wk.sending.Store(false)
		x.p.pipelineNext(x.wk)
	}
}

// runBehind serves a request pipelined to a busy worker (pipeline.go),
// whose message the arbiter has queued to it: it waits for its turn, then
// reads the response like run. again reports that the worker never read
// the request, which must be dispatched anew.
func (x *exchange) runBehind(turn *waiter) (res result, again bool) {
	x.stream = turn.stream
	// The arbiter wrote the request when it queued it and never set the
	// sending mark; the release that follows looks for the next request
	// to queue, so end must not do it a second time.
	x.isSent = true
	g, ok := x.awaitTurn(turn)
	switch {
	case !ok:
		return result{}, true // taken back: never started
	case g.failedAhead:
		if x.wk.next.takeBack(x.stream, true) {
			x.p.release(x.wk, outcomeOK) // nothing of ours to answer; it is retired already
			return result{}, true
		}
		// The worker took it, then died with the request ahead.
		x.p.log.Error("worker failed with a pipelined request queued", zap.String("app", x.p.name),
			zap.Int("worker", x.wk.id), zap.Int("pid", x.wk.pid), zap.String("path", x.r.URL.Path))
		return result{out: outcomeCrash, status: http.StatusBadGateway}, false
	}
	x.wk.conn.SetDeadline(time.Now().Add(x.wk.gen.app.Timeout))
	x.bodyDone = true // the whole request is with the worker: an abort may go out
	x.queued = true
	stop := context.AfterFunc(x.r.Context(), x.abort)
	res = x.end(x.readResponse(), stop)
	if x.unread {
		// The worker failed between the request ahead and this one: its
		// failure is the arbiter's to handle, the request another
		// worker's.
		x.p.release(x.wk, res.out)
		return result{}, true
	}
	return res, false
}

// awaitTurn waits for the request's turn on its worker. Past its patience,
// or when its client leaves, the request tries to take itself back; ok
// false means it did (the worker never saw it, and holds nothing of it).
func (x *exchange) awaitTurn(turn *waiter) (g grant, ok bool) {
	timer := time.NewTimer(turn.patience)
	defer timer.Stop()
	done := x.r.Context().Done()
	for {
		select {
		case g = <-turn.reply:
			waiterPool.Put(turn)
			return g, true
		case <-timer.C:
		case <-done:
			done = nil
		}
		if x.p.takeBackBehind(x.wk, turn, x.stream) {
			return grant{}, false
		}
		// The worker has it, or the turn came: the request ahead is done,
		// so the turn is moments away. Wait for it.
	}
}

// message is a request built as one pipelining message (H, B, E; stream
// 0 until it is queued to a worker), while it waits in the queue.
type message struct {
	r    *http.Request
	body *spool
	wr   *wire.Writer // from msgWriters once built
}

// build makes the message; nil if the request does not fit in one.
func (m *message) build() []byte {
	m.wr = msgWriters.Get().(*wire.Writer)
	// One B frame for the whole body (at most pipelineMaxBody), so the
	// writer never has to flush.
	if writeHead(m.wr, m.r, m.body, 0) != 0 || bufferBody(m.wr, m.body, 0, pipelineMaxBody) != nil {
		m.free()
		return nil
	}
	return m.wr.Pending()
}

// bytes is the built message, or nil.
func (m *message) bytes() []byte {
	if m.wr == nil {
		return nil
	}
	return m.wr.Pending()
}

func (m *message) free() {
	if m.wr != nil {
		m.wr.Reset()
		msgWriters.Put(m.wr)
		m.wr = nil
	}
}

// msgWriters build pipelined requests, one message each, of at most
// pipelineMaxMsg bytes: a request that does not fit makes the writer
// flush, which fails, and the request is dispatched the usual way.
var msgWriters = sync.Pool{New: func() any { return wire.NewWriter(msgTooLarge{}, pipelineMaxMsg) }}

type msgTooLarge struct{}

func (msgTooLarge) Write([]byte) (int, error) {
	return 0, errors.New("request too large to pipeline")
}

// writeHead puts r's H frame in wr. A status (431) means it could not be
// encoded and nothing was written.
func writeHead(wr *wire.Writer, r *http.Request, body *spool, stream uint32) (status int) {
	bodyLen := int64(-1)
	if body != nil {
		bodyLen = body.Len()
	} else if _, ok := r.Header["Content-Length"]; ok {
		bodyLen = 0
	}
	wr.StartFrame(wire.Head, stream)
	appendEnviron(wr, r, bodyLen)
	if err := wr.EndFrame(); err != nil {
		return http.StatusRequestHeaderFieldsTooLarge
	}
	return 0
}

func (x *exchange) exchange() result {
	inline := x.body == nil || x.body.Len() <= inlineBody
	switch {
	case x.pre != nil:
		// Built while it was queued: only its number is new.
		setStream(x.pre, x.stream)
		x.wk.wr.AppendRaw(x.pre)
	case writeHead(x.wk.wr, x.r, x.body, x.stream) != 0:
		x.sent()
		// Nothing was sent; the worker is untouched.
		return result{out: outcomeOK, status: http.StatusRequestHeaderFieldsTooLarge}
	case inline:
		if err := bufferBody(x.wk.wr, x.body, x.stream, wire.MaxChunk); err != nil {
			x.wk.wr.Reset()
			x.sent()
			return x.broken(err)
		}
	default:
		x.bodyErr = make(chan error, 1)
		go func() { x.bodyErr <- x.writeBodyAsync() }()
	}
	stop := context.AfterFunc(x.r.Context(), x.abort)
	var res result
	if err := x.sendInline(inline); err != nil {
		res = x.broken(err)
	} else {
		res = x.readResponse()
	}
	return x.end(res, stop)
}

// end finishes an exchange whose request was written: it waits for a
// running abort and the body writer, and clears the sending mark if
// nothing did.
func (x *exchange) end(res result, stop func() bool) result {
	if res.out != outcomeOK {
		x.wk.conn.SetDeadline(time.Unix(1, 0)) // unblock the body writer; the worker is done for
	}
	if !stop() {
		x.once.Do(func() {}) // wait for a running abort before release
	}
	if x.bodyErr != nil {
		if err := <-x.bodyErr; err != nil && res.out == outcomeOK && !x.aborted.Load() {
			res.out = outcomeCrash // the worker stopped reading its body
		}
	}
	x.sent()
	return res
}

// bufferBody buffers the whole (small) body and E behind H, in wr, in B
// frames of up to chunk bytes: for sendAndAwait to write at once, or as
// one pipelined message. (Only a head and body larger than the writer's
// buffer make it write some of it already.)
func bufferBody(wr *wire.Writer, body *spool, stream uint32, chunk int) error {
	if body != nil {
		src, err := body.Reader()
		if err != nil {
			return err
		}
		for {
			if _, err := wr.ReadFrameFrom(wire.Body, stream, src, chunk); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
		}
	}
	return wr.WriteFrame(wire.End, stream, nil)
}

// writeBodyAsync streams a large body chunk by chunk, stopping early when
// the client went away (then A follows E).
func (x *exchange) writeBodyAsync() error {
	wr := x.wk.wr
	src, err := x.body.Reader()
	for err == nil && !x.aborted.Load() {
		x.wmu.Lock()
		if _, err = wr.ReadFrameFrom(wire.Body, x.stream, src, wire.MaxChunk); err == nil {
			err = wr.Flush()
		}
		x.wmu.Unlock()
	}
	if err == io.EOF {
		err = nil
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	x.bodyDone = true
	if err != nil {
		wr.Reset()
		return err
	}
	wr.WriteFrame(wire.End, x.stream, nil)
	if x.aborted.Load() {
		wr.WriteFrame(wire.Abort, x.stream, nil)
	}
	return wr.Flush()
}

// abort tells the worker the client went away (A). It is safe from any
// goroutine; the frame goes out once, after the body's E.
func (x *exchange) abort() {
	x.once.Do(func() {
		x.aborted.Store(true)
		x.wmu.Lock()
		defer x.wmu.Unlock()
		if x.bodyDone {
			var b [wire.HeaderLen]byte
			x.wk.conn.Write(wire.AppendHeader(b[:0], wire.Abort, x.stream, 0))
		}
	})
}

// readResponse reads S, then D/F until Z or X.
func (x *exchange) readResponse() result {
	rd := x.wk.rd
	f, err := rd.ReadFrame()
	if err != nil {
		return x.broken(err)
	}
	if f.Stream != x.stream || f.Type != wire.Response {
		return x.protocol("expected S frame", f)
	}
	code, vars, err := wire.ParseResponseHead(f.Payload)
	if err != nil || code < 200 || code > 999 {
		return x.protocol("bad response status", f)
	}
	res := result{out: outcomeOK, code: code}
	var hasCL bool
	if res.header, res.headLen, hasCL, err = x.parseHead(vars); err != nil {
		return x.protocol("bad response head", f)
	}
	bodiless := x.r.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	canStream := !hasCL && !bodiless
	body := &x.resp
	body.init(x.p.mgr.runtimeDir)
	var spoolErr error
	for {
		// Stream once the reader has caught up with the worker. Not after
		// a failed buffer write: the abort it started runs on a goroutine
		// of its own and may not have said so yet, and streaming then
		// would send a 200 whose body ends, cleanly, where the disk did.
		if canStream && !x.streamed && rd.Buffered() == 0 && spoolErr == nil && !x.aborted.Load() {
			x.startStreaming(res, body)
		}
		f, err := rd.ReadFrame()
		if err != nil {
			body.Close()
			return x.broken(err)
		}
		if f.Stream != x.stream {
			body.Close()
			return x.protocol("frame for another stream", f)
		}
		switch f.Type {
		case wire.Data:
			switch {
			case x.aborted.Load() || spoolErr != nil:
			case x.streamed:
				x.streamChunk(f.Payload, rd.Buffered() == 0)
			default:
				if spoolErr = body.addData(f.Payload); spoolErr != nil {
					go x.abort()
				}
			}
		case wire.File:
			file, ok := rd.TakeFile("response")
			off, cnt, perr := wire.ParseFileRange(f.Payload)
			if !ok || perr != nil {
				if ok {
					file.Close()
				}
				body.Close()
				return x.protocol("F frame without descriptor or range", f)
			}
			switch {
			case x.aborted.Load() || spoolErr != nil:
				file.Close()
			case x.streamed:
				x.streamFile(file, off, cnt)
			default:
				if spoolErr = body.addFile(file, off, cnt); spoolErr != nil {
					go x.abort()
				}
			}
		case wire.Done, wire.Error:
			return x.finish(res, body, f, spoolErr)
		default:
			body.Close()
			return x.protocol("unexpected frame", f)
		}
	}
}

// parseHead decodes the app's response headers (the S frame's vars) with
// one string allocation for all names and values. Content-Length is
// returned apart (Serve sets its own from the body); hop-by-hop fields and
// those a Connection field names are dropped (RFC 9110 §7.6.1).
func (x *exchange) parseHead(vars []byte) (fields []headerField, contentLength string, hasCL bool, err error) {
	fields = x.fields[:0]
	var connection []string
	for rest := string(vars); rest != ""; {
		var k, v string
		if k, v, rest, err = wire.CutVar(rest); err != nil {
			break
		}
		key := http.CanonicalHeaderKey(k) // allocates only if k is not canonical
		switch {
		case key == "Content-Length":
			hasCL, contentLength = true, v
		case key == "Connection":
			connection = append(connection, v)
		case !hopByHop[key]:
			fields = append(fields, headerField{key, v})
		}
	}
	if len(connection) > 0 {
		kept := fields[:0]
		for _, f := range fields {
			if !isHopByHop(f.key, connection) {
				kept = append(kept, f)
			}
		}
		fields = kept
	}
	return fields, contentLength, hasCL, err
}

// setHeader copies the app's fields, and Content-Length when
// contentLength is not empty, into the client response's header. Each
// name the app sent replaces what the header had; repeated names add
// values. One allocation backs every value slice.
func (x *exchange) setHeader(fields []headerField, contentLength string) {
	h := x.rw.Header()
	vals := make([]string, len(fields)+1)
	for i, f := range fields {
		if firstOf(fields, i) {
			vals[i] = f.value
			h[f.key] = vals[i : i+1 : i+1]
		} else {
			h[f.key] = append(h[f.key], f.value)
		}
	}
	if contentLength != "" {
		vals[len(fields)] = contentLength
		h["Content-Length"] = vals[len(fields):]
	}
}

// firstOf reports whether fields[i] is the first field with its name.
func firstOf(fields []headerField, i int) bool {
	for _, f := range fields[:i] {
		if f.key == fields[i].key {
			return false
		}
	}
	return true
}

// finish handles Z or X. The worker is idle again either way.
func (x *exchange) finish(res result, body *respBody, f wire.Frame, spoolErr error) result {
	if f.Type == wire.Error {
		x.p.log.Warn("app failed mid-response", zap.String("app", x.p.name), zap.Int("worker", x.wk.id),
			zap.String("path", x.r.URL.Path), zap.ByteString("error", f.Payload))
	}
	switch {
	case x.streamed:
		body.Close()
		x.flush()
		// X: the body is incomplete; only cutting the connection says so.
		// (Streaming never starts after a buffering failure, and once it
		// has, nothing is buffered; spoolErr is checked here all the same
		// so that a change there cannot turn into a short 200.)
		return result{out: outcomeOK, abort: spoolErr != nil || f.Type == wire.Error && !x.aborted.Load()}
	case x.aborted.Load() && spoolErr == nil:
		body.Close()
		return result{out: outcomeOK, status: statusClientGone}
	case spoolErr != nil:
		body.Close()
		x.p.log.Error("buffering response", zap.String("app", x.p.name), zap.Error(spoolErr))
		return result{out: outcomeOK, status: http.StatusBadGateway}
	case f.Type == wire.Error:
		// Nothing reached the client yet, so it can get a clean 502
		// instead of a truncated body.
		body.Close()
		return result{out: outcomeOK, status: http.StatusBadGateway}
	}
	res.buffered = body
	return res
}

// writeBuffered sends a complete response after the worker was released.
func (x *exchange) writeBuffered(res result) {
	bodiless := x.r.Method == http.MethodHead || res.code == http.StatusNoContent || res.code == http.StatusNotModified
	cl := ""
	switch {
	case !bodiless:
		cl = strconv.FormatInt(res.buffered.size, 10)
	case res.code != http.StatusNoContent:
		cl = res.headLen // HEAD, 304: the length a GET would have
	}
	x.setHeader(res.header, cl)
	if !bodiless && res.buffered.size > packethint.MinBody {
		// The head and the body's start would leave in a short packet of
		// their own: a 10 KiB page took 4 TCP segments instead of 2.
		packethint.MoreFollows(x.r)
	}
	x.rw.WriteHeader(res.code)
	if !bodiless {
		res.buffered.writeTo(x.rw) // an error here is the client's; nothing to do
	}
}

// startStreaming sends the head and what was buffered so far; from now on
// chunks go to the client as they arrive.
func (x *exchange) startStreaming(res result, body *respBody) {
	x.streamed = true
	x.setHeader(res.header, "")
	x.rw.WriteHeader(res.code)
	if err := body.writeTo(x.rw); err != nil {
		go x.abort()
	}
	x.flush()
}

func (x *exchange) streamChunk(p []byte, flush bool) {
	if _, err := x.rw.Write(p); err != nil {
		go x.abort() // client gone: A, then discard until Z
		return
	}
	if flush {
		x.flush()
	}
}

func (x *exchange) streamFile(f *os.File, off, count uint64) {
	defer f.Close()
	n, err := fileRange(f, off, count)
	if err == nil {
		err = sendFile(x.rw, f, int64(off), n)
	}
	if err != nil {
		go x.abort()
	}
}

func (x *exchange) flush() {
	http.NewResponseController(x.rw).Flush() // not every writer can; then it is sent at the end
}

// broken classifies a failed read or write on the worker connection.
func (x *exchange) broken(err error) result {
	out, status := outcomeCrash, http.StatusBadGateway
	switch {
	case x.wk.timedOut.Load() || errors.Is(err, os.ErrDeadlineExceeded):
		out, status = outcomeTimeout, http.StatusGatewayTimeout
	case errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrFDLost):
		out = outcomeProtocol
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed):
	default:
		out = outcomeProtocol
	}
	if x.queued && x.wk.next.takeBack(x.stream, true) {
		// Still in the worker's queue: the worker never read it (the
		// kernel gives a message to one reader only), so nothing of it
		// ran and it may be served elsewhere.
		x.unread = true
		x.p.log.Warn("worker failed before reading a pipelined request; sending it to another worker",
			zap.String("app", x.p.name), zap.Int("worker", x.wk.id), zap.Int("pid", x.wk.pid),
			zap.String("method", x.r.Method), zap.String("path", x.r.URL.Path), zap.Error(err))
		return result{out: out, status: status}
	}
	if out == outcomeTimeout {
		x.p.log.Warn("request timed out", zap.String("app", x.p.name), zap.Int("worker", x.wk.id),
			zap.Int("pid", x.wk.pid), zap.String("method", x.r.Method), zap.String("path", x.r.URL.Path),
			zap.Duration("timeout", x.wk.gen.app.Timeout))
	} else {
		x.p.log.Error("worker connection failed mid-request", zap.String("app", x.p.name),
			zap.Int("worker", x.wk.id), zap.Int("pid", x.wk.pid), zap.String("method", x.r.Method),
			zap.String("path", x.r.URL.Path), zap.Error(err))
	}
	if x.streamed {
		return result{out: out, abort: true}
	}
	return result{out: out, status: status}
}

func (x *exchange) protocol(what string, f wire.Frame) result {
	x.p.log.Error("worker protocol error", zap.String("app", x.p.name), zap.Int("worker", x.wk.id),
		zap.Int("pid", x.wk.pid), zap.String("error", what), zap.String("frame", string(rune(f.Type))),
		zap.Uint32("stream", f.Stream), zap.Uint32("want_stream", x.stream))
	if x.streamed {
		return result{out: outcomeProtocol, abort: true}
	}
	return result{out: outcomeProtocol, status: http.StatusBadGateway}
}

var _ interface {
	Serve(http.ResponseWriter, *http.Request) int
} = (*Pool)(nil)
