package cache

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// fetch describes one upstream request made on the cache's behalf.
type fetch struct {
	key     string  // entry key to store under and the flight's key
	primary string  // key template output
	stale   *entry  // stored entry being revalidated, or nil
	flight  *flight // the flight this fetch leads, or nil
	fwd     string  // Cache-Status fwd reason
	store   bool    // the request allows storing (no request no-store)
	// solo fetches pass the client's conditional headers upstream (its
	// 304 goes straight back); coalesced ones strip them, so that the
	// stored response is complete, and answer the condition themselves.
	solo        bool
	conditional bool          // the cache added its own validators
	stripped    bool          // the client's conditionals were not sent upstream
	rd          reqDirectives // the client's directives, for stale-if-error
}

// forward sends r to the next handler and answers w (nil for a
// background refresh) while capturing the response for the store.
func (h *handler) forward(w http.ResponseWriter, r *http.Request, f fetch) {
	c := h.c
	ur := h.upstreamRequest(r, &f)
	fw := &fetchWriter{h: h, f: &f, r: r, client: w, hdr: make(http.Header), reqTime: c.now(), declared: -1}
	defer func() {
		if p := recover(); p != nil {
			fw.abort(resRetry, false)
			if !fw.wroteHeader && w != nil && f.stale != nil && fw.serveStaleOnError(http.StatusBadGateway) {
				c.log.Warn("cache: upstream handler panicked, served stale", zap.String("key", f.key), zap.Any("panic", p))
				return
			}
			panic(p)
		}
	}()
	h.next.ServeHTTP(fw, ur)
	fw.done()
}

// upstreamRequest is r as the cache sends it: HEAD becomes GET so that
// the body can be stored (nginx's proxy_cache_convert_head), and for
// coalesced fetches the client's If-None-Match and If-Modified-Since are
// replaced by the stored entry's validators, or dropped.
func (h *handler) upstreamRequest(r *http.Request, f *fetch) *http.Request {
	head := r.Method == http.MethodHead && f.store
	validate := f.stale != nil && f.stale.hasValidator()
	strip := (!f.solo || validate) && (r.Header["If-None-Match"] != nil || r.Header["If-Modified-Since"] != nil)
	if !head && !validate && !strip {
		return r
	}
	ur := r.Clone(r.Context())
	if head {
		ur.Method = http.MethodGet
	}
	if strip {
		f.stripped = true
		ur.Header.Del("If-None-Match")
		ur.Header.Del("If-Modified-Since")
	}
	if validate {
		if f.stale.etag != "" {
			ur.Header.Set("If-None-Match", f.stale.etag)
		}
		if f.stale.lastModified != "" {
			ur.Header.Set("If-Modified-Since", f.stale.lastModified)
		}
		f.conditional = true
	}
	return ur
}

// writeMode is what a fetchWriter does with the body.
type writeMode uint8

const (
	modePass    writeMode = iota // stream to the client only
	modeCapture                  // stream to the client and capture for the store
	modeSwallow                  // discard: the client was answered from the store
)

// fetchWriter is the ResponseWriter the next handler writes a forwarded
// response into. It decides at WriteHeader whether the response is
// stored, streams the body to the client as it comes, and captures it up
// to the entry size limits.
type fetchWriter struct {
	h       *handler
	f       *fetch
	r       *http.Request       // the client's request
	client  http.ResponseWriter // nil for background refreshes
	hdr     http.Header
	reqTime time.Time

	wroteHeader bool
	status      int
	mode        writeMode
	toClient    bool  // body bytes go to the client
	clientErr   error // first failed client write
	entry       *entry
	buf         []byte
	n           int64 // body bytes captured
	declared    int64 // Content-Length, or -1
	disk        *diskWriter
}

func (fw *fetchWriter) Header() http.Header { return fw.hdr }

func (fw *fetchWriter) WriteHeader(code int) {
	if fw.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if fw.client != nil { // 103 Early Hints and the like pass through
			copyHeader(fw.client.Header(), fw.hdr)
			fw.client.WriteHeader(code)
		}
		return
	}
	fw.wroteHeader, fw.status = true, code
	now := fw.h.c.now()
	if s := fw.f.stale; s != nil {
		if code == http.StatusNotModified && fw.f.conditional {
			fw.mode = modeSwallow
			fw.revalidated(now)
			return
		}
		if code >= 500 && fw.client == nil {
			fw.mode = modeSwallow // a failed refresh keeps the stale entry
			fw.h.c.finish(fw.f.key, fw.f.flight, resRetry, nil)
			return
		}
		if code >= 500 && fw.serveStaleOnError(code) {
			fw.mode = modeSwallow
			return
		}
	}
	fw.respond(code, now)
}

// respond handles a full response: decide storing, then pass the head on.
func (fw *fetchWriter) respond(code int, now time.Time) {
	c, f := fw.h.c, fw.f
	why := "request"
	if f.store {
		a := fw.h.analyze(code, fw.hdr, fw.r.Header["Authorization"] != nil, now)
		why = a.why
		if why == "" {
			fw.declared = contentLength(fw.hdr)
			if fw.declared > fw.maxBody() {
				why = whyTooLarge
			} else {
				fw.entry = fw.h.newEntry(code, fw.hdr, &a, fw.reqTime, now)
				fw.mode = modeCapture
				fw.startCapture()
			}
		}
	}
	if fw.entry == nil {
		if passMarks(why) && !f.solo && code < 500 {
			c.markPass(f.key)
		}
		c.finish(f.key, f.flight, resPass, nil)
		if f.stale != nil && passMarks(why) {
			c.remove(f.stale) // superseded by a response that may not be stored
		}
	}
	if fw.client == nil {
		return
	}
	c.stats.misses.Add(1)
	ch := fw.client.Header()
	copyHeader(ch, fw.hdr)
	c.setStatus(ch, xMiss, cacheStatus{fwd: f.fwd, fwdStatus: code, stored: fw.entry != nil})
	fw.toClient = fw.r.Method != http.MethodHead
	if f.stripped && code == http.StatusOK && notModified(fw.r, headerValue(fw.hdr, "Etag"), headerValue(fw.hdr, "Last-Modified")) {
		// The client's condition was stripped upstream; answer it here.
		fw.toClient = false
		writeNotModified(fw.client)
		return
	}
	fw.client.WriteHeader(code)
}

// maxBody is the largest body the store takes: the disk tier's limit
// when there is one, else memory's.
func (fw *fetchWriter) maxBody() int64 {
	if fw.h.c.disk != nil {
		return max(fw.h.c.opts.MaxEntrySize, fw.h.c.opts.DiskMaxEntrySize)
	}
	return fw.h.c.opts.MaxEntrySize
}

func (fw *fetchWriter) Write(p []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if fw.mode == modeSwallow {
		return len(p), nil
	}
	if fw.toClient && fw.client != nil {
		if fw.clientErr != nil {
			return 0, fw.clientErr
		}
		if n, err := fw.client.Write(p); err != nil {
			fw.clientErr = err
			fw.abort(resRetry, false)
			return n, err
		}
	}
	if fw.mode == modeCapture {
		fw.capture(p)
	}
	return len(p), nil
}

// Flush passes through, so streaming responses stay streaming.
func (fw *fetchWriter) Flush() {
	if fw.client != nil && fw.toClient {
		if fl, ok := fw.client.(http.Flusher); ok {
			fl.Flush()
		}
	}
}

// Unwrap lets http.ResponseController reach the client's writer.
func (fw *fetchWriter) Unwrap() http.ResponseWriter { return fw.client }

// done runs after the next handler returned: store a complete capture.
func (fw *fetchWriter) done() {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	c, f := fw.h.c, fw.f
	if fw.mode != modeCapture {
		c.finish(f.key, f.flight, resPass, nil)
		return
	}
	if fw.declared >= 0 && fw.n != fw.declared || fw.r.Context().Err() != nil {
		// Cut off (the client's cancellation reaches the upstream too):
		// never store a truncated body.
		fw.abort(resRetry, false)
		return
	}
	e := fw.entry
	e.key, e.primary, e.url = f.key, f.primary, urlKey(fw.r.Host, fw.r.URL.RequestURI())
	if len(e.vary) > 0 {
		sec := appendSecondary(nil, fw.r.Header, e.vary)
		e.secondary = string(sec)
		e.key = fullKey(f.primary, e.vary, sec)
	}
	e.bodyLen = fw.n
	if fw.disk != nil {
		path, err := fw.disk.commit(e.key)
		fw.disk = nil
		if err != nil {
			c.log.Error("cache: disk tier write failed; response not stored", zap.Error(err))
			c.finish(f.key, f.flight, resPass, nil)
			return
		}
		e.file = path
	} else {
		if cap(fw.buf)-len(fw.buf) > len(fw.buf)/8 {
			fw.buf = slices.Clone(fw.buf) // do not hold append's slack
		}
		e.body = fw.buf
	}
	if e.header["Content-Length"] == nil && bodyAllowed(e.status) {
		e.header["Content-Length"] = []string{strconv.FormatInt(fw.n, 10)}
	}
	if !c.put(e, f.stale) {
		c.finish(f.key, f.flight, resPass, nil)
		return
	}
	c.finish(f.key, f.flight, resStored, e)
}

// abort stops capturing; the response still streams to the client.
// pass marks the key as not storable (too large, disk full).
func (fw *fetchWriter) abort(res flightResult, pass bool) {
	if fw.mode == modeCapture {
		fw.mode = modePass
	}
	fw.buf, fw.entry = nil, nil
	if fw.disk != nil {
		fw.disk.abort()
		fw.disk = nil
	}
	if pass {
		fw.h.c.markPass(fw.f.key)
	}
	fw.h.c.finish(fw.f.key, fw.f.flight, res, nil)
}

// passMarks reports whether a reason not to store is the response's own,
// so that later requests for the key should not wait on each other.
func passMarks(why string) bool {
	switch why {
	case whyNoStore, whyPrivate, whySetCookie, whyVaryStar, whyTrailers, whyNotCacheable, whyNoValidator, whyTooLarge, whyStreaming:
		return true
	}
	return false
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// contentLength is the declared body length, or -1.
func contentLength(h http.Header) int64 {
	v := headerValue(h, "Content-Length")
	if v == "" {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// bodyAllowed mirrors RFC 9110 §6.4.1: no body for 1xx, 204 and 304.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

var _ http.Flusher = (*fetchWriter)(nil)
