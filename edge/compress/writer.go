package compress

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
)

// errFinished is returned by writes after the handler has returned.
var errFinished = errors.New("compress: response already finished")

// state is where a response is in its life. Each state names its exits.
type state uint8

const (
	// stateStart: no final status yet. Exits: WriteHeader (or an implicit
	// 200 from Write, Flush or ReadFrom) to stateBuffer, statePass or
	// stateEncode; Hijack to stateHijacked.
	stateStart state = iota
	// stateBuffer: the response could be compressed but its length (or,
	// with no Content-Type, its type) is not known yet; the status is
	// held back and body bytes are kept in buf. Exits: buf reaching the
	// threshold, Flush, or the handler returning, to statePass or
	// stateEncode.
	stateBuffer
	// statePass: headers went out unchanged (apart from Vary); the body
	// goes straight to the underlying writer, ReadFrom included. Final.
	statePass
	// stateEncode: headers went out with Content-Encoding; the body goes
	// through enc. Exit: the handler returning closes the stream.
	stateEncode
	// stateHijacked: the handler took the connection. Final.
	stateHijacked
	// stateDone: finish ran. Final.
	stateDone
)

// flushMode says why a buffered response is being committed.
type flushMode uint8

const (
	modeFull  flushMode = iota // buf reached the threshold
	modeFlush                  // the handler flushed: it is streaming
	modeFinal                  // the handler returned: buf is the whole body
)

// responseWriter decides per response whether to compress, and does it.
// One per request; not safe for concurrent use, like any ResponseWriter.
type responseWriter struct {
	rw  http.ResponseWriter
	c   *Compressor
	req *http.Request

	state     state
	status    int
	typeKnown bool    // false: no Content-Type, sniff the body like net/http
	alg       int     // index into c.names once negotiated
	buf       *[]byte // body held in stateBuffer; from c.bufPool
	enc       *pooledEncoder
}

func (w *responseWriter) Header() http.Header { return w.rw.Header() }

// Unwrap lets http.ResponseController reach the real writer for
// SetReadDeadline, SetWriteDeadline and EnableFullDuplex.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.rw }

func (w *responseWriter) WriteHeader(code int) {
	switch {
	case w.state == statePass:
		w.rw.WriteHeader(code) // superfluous: let net/http say so
		return
	case w.state != stateStart:
		return
	case code >= 100 && code < 200 && code != http.StatusSwitchingProtocols:
		w.rw.WriteHeader(code) // informational (103 Early Hints): goes out now
		return
	}
	w.status = code
	w.decide()
}

// decide runs when the final status is known and settles everything the
// headers alone can settle.
func (w *responseWriter) decide() {
	h := w.rw.Header()
	switch {
	case w.status == http.StatusNotModified:
		w.notModified(h)
		w.startPass()
		return
	case w.status == http.StatusSwitchingProtocols, w.status == http.StatusNoContent,
		// RFC 9110 §7.7: a response may forbid transformation.
		hasToken(h["Cache-Control"], "no-transform"):
		w.startPass()
		return
	}
	ct, haveCT := h["Content-Type"]
	w.typeKnown = haveCT
	if haveCT {
		var mt string
		if len(ct) > 0 {
			mt = mediaType(ct[0])
		}
		if !w.c.allowedType(mt) {
			w.startPass()
			return
		}
		// Whether or not this response is compressed, the same URL can
		// be compressed for another request: caches must key on it.
		addVary(h)
	}
	if len(h["Content-Encoding"]) > 0 || // already encoded (a precompressed sidecar, an upstream's gzip)
		w.req.Method == http.MethodHead || // no body to compress
		len(w.req.Header["Range"]) > 0 || w.status == http.StatusPartialContent { // ranges address identity bytes
		w.startPass()
		return
	}
	if w.alg = w.c.negotiate(w.req); w.alg < 0 {
		w.startPass()
		return
	}
	if n := contentLength(h); n >= 0 {
		switch {
		case n == 0 || n < w.c.minLength:
			w.startPass()
			return
		case w.typeKnown:
			w.startEncode()
			return
		}
	}
	w.state = stateBuffer
}

// notModified handles a 304, which has no body but should carry the Vary
// and validator its 200 would have (RFC 9110 §15.4.5). A 304 usually has no
// Content-Type, so the type is guessed from the path's extension.
func (w *responseWriter) notModified(h http.Header) {
	if hasToken(h["Cache-Control"], "no-transform") || len(h["Content-Encoding"]) > 0 {
		return
	}
	var mt string
	if ct := h["Content-Type"]; len(ct) > 0 {
		mt = mediaType(ct[0])
	} else {
		mt = guessType(w.req)
	}
	if !w.c.allowedType(mt) {
		return
	}
	addVary(h)
	if len(w.req.Header["Range"]) == 0 && w.c.negotiate(w.req) >= 0 {
		weakenETag(h)
	}
}

func (w *responseWriter) startPass() {
	w.state = statePass
	w.rw.WriteHeader(w.status)
}

func (w *responseWriter) startEncode() {
	h := w.rw.Header()
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges") // ranges of the encoded bytes are not offered
	h["Content-Encoding"] = w.c.encHdr[w.alg]
	weakenETag(h)
	w.state = stateEncode
	w.rw.WriteHeader(w.status)
	w.enc = w.c.pools[w.alg].get(w.rw)
}

// threshold is how many bytes stateBuffer collects before deciding.
func (w *responseWriter) threshold() int {
	t := w.c.minLength
	if !w.typeKnown {
		t = max(t, 512) // what net/http's sniffing reads
	}
	return int(max(t, 1))
}

func (w *responseWriter) buffer() *[]byte {
	if w.buf == nil {
		w.buf = w.c.bufPool.Get().(*[]byte)
	}
	return w.buf
}

func (w *responseWriter) releaseBuffer() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		w.c.bufPool.Put(w.buf)
		w.buf = nil
	}
}

// commit leaves stateBuffer: it picks identity or the coding, sends the
// held status and writes out the buffered bytes.
func (w *responseWriter) commit(mode flushMode) error {
	var b []byte
	if w.buf != nil {
		b = *w.buf
	}
	var encode bool
	switch mode {
	case modeFull:
		encode = true
	case modeFlush:
		encode = w.typeKnown || len(b) > 0
	case modeFinal:
		encode = len(b) > 0 && int64(len(b)) >= w.c.minLength
	}
	// Sniff whenever there are bytes, compressed or not: the underlying
	// writer may not get the chance (net/http sniffs only its first write,
	// and never once Content-Encoding is set).
	if !w.typeKnown && len(b) > 0 && !w.sniff(b) {
		encode = false
	}
	if encode {
		w.startEncode()
	} else {
		w.startPass()
	}
	var err error
	if len(b) > 0 {
		_, err = w.writeDecided(b)
	}
	w.releaseBuffer()
	return err
}

// sniff sets Content-Type from the body as net/http would have (it cannot
// once Content-Encoding is set) and reports whether that type may be
// compressed.
func (w *responseWriter) sniff(b []byte) bool {
	h := w.rw.Header()
	ct := http.DetectContentType(b)
	h["Content-Type"] = []string{ct}
	if !w.c.allowedType(mediaType(ct)) {
		return false
	}
	addVary(h)
	return true
}

// writeDecided writes p in statePass or stateEncode.
func (w *responseWriter) writeDecided(p []byte) (int, error) {
	if w.state == stateEncode {
		return w.enc.enc.Write(p)
	}
	return w.rw.Write(p)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.state == stateStart {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case statePass, stateEncode:
		return w.writeDecided(p)
	case stateBuffer:
		b := w.buffer()
		room := w.threshold() - len(*b)
		if len(p) < room {
			*b = append(*b, p...)
			return len(p), nil
		}
		*b = append(*b, p[:room]...)
		if err := w.commit(modeFull); err != nil {
			return room, err
		}
		n, err := w.writeDecided(p[room:])
		return room + n, err
	case stateHijacked:
		return 0, http.ErrHijacked
	}
	return 0, errFinished
}

// ReadFrom keeps the sendfile path for responses that are not compressed:
// net/http's own ReadFrom gets src untouched. Compressed responses copy
// through the encoder; nothing skips it.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.state == stateStart {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	if w.state == stateBuffer {
		b := w.buffer()
		m, err := io.ReadFull(src, (*b)[len(*b):w.threshold()])
		*b = (*b)[:len(*b)+m]
		n += int64(m)
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return n, nil // short body: decided by a later write or finish
		default:
			return n, err
		}
		if err := w.commit(modeFull); err != nil {
			return n, err
		}
	}
	var m int64
	var err error
	switch w.state {
	case statePass:
		if rf, ok := w.rw.(io.ReaderFrom); ok {
			m, err = rf.ReadFrom(src)
		} else {
			m, err = copyTo(w.rw, src)
		}
	case stateEncode:
		m, err = copyTo(w.enc.enc, src)
	case stateHijacked:
		err = http.ErrHijacked
	default:
		err = errFinished
	}
	return n + m, err
}

// copyTo copies with a pooled buffer, calling only dst.Write, so neither
// side's ReaderFrom/WriterTo can route around dst.
func copyTo(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		m, rerr := src.Read(buf)
		if m > 0 {
			wm, werr := dst.Write(buf[:m])
			n += int64(wm)
			if werr != nil {
				return n, werr
			}
			if wm != m {
				return n, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// FlushError pushes everything written so far to the client: a buffered
// response is committed (a flushing handler is streaming, so the minimum
// length no longer applies), the encoder emits a decodable block boundary,
// then the underlying writer flushes. http.ResponseController.Flush calls
// this.
func (w *responseWriter) FlushError() error {
	if w.state == stateStart {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case stateBuffer:
		if err := w.commit(modeFlush); err != nil {
			return err
		}
	case stateHijacked:
		return http.ErrHijacked
	case stateDone:
		return errFinished
	}
	if w.state == stateEncode {
		if err := w.enc.enc.Flush(); err != nil {
			return err
		}
		if err := w.enc.sink.flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(w.rw).Flush()
}

// Flush is http.Flusher's form of FlushError.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Hijack hands over the connection (where the underlying writer can) and
// makes this writer inert, so finish writes nothing on it.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.rw).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.releaseBuffer()
	if w.enc != nil {
		w.c.pools[w.alg].put(w.enc) // abandoned mid-stream; get resets it
		w.enc = nil
	}
	w.state = stateHijacked
	return conn, brw, nil
}

// finish runs after the handler returns: it settles a still-buffered
// response, closes the encoded stream and returns the encoder to its pool.
func (w *responseWriter) finish() {
	if w.state == stateBuffer {
		_ = w.commit(modeFinal) // a write error means the client left
	}
	if w.state == stateEncode {
		if w.enc.enc.Close() == nil {
			_ = w.enc.sink.flush() // a write error means the client left
		}
		w.c.pools[w.alg].put(w.enc)
		w.enc = nil
	}
	w.releaseBuffer()
	if w.state != stateHijacked {
		w.state = stateDone
	}
}

var (
	_ http.ResponseWriter                       = (*responseWriter)(nil)
	_ http.Flusher                              = (*responseWriter)(nil)
	_ http.Hijacker                             = (*responseWriter)(nil)
	_ io.ReaderFrom                             = (*responseWriter)(nil)
	_ interface{ FlushError() error }           = (*responseWriter)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*responseWriter)(nil)
)
