package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// spoolMem is how much of a buffered request body stays in memory; the
// rest goes to a temp file. 1 MiB keeps forms and JSON in memory while
// an upload costs disk, not RAM.
const spoolMem = 1 << 20

// spool is a request body read completely before it is sent, so every
// attempt can send it again from the start.
type spool struct {
	mem      []byte
	file     *os.File // the part past spoolMem; nil when it all fit
	fileSize int64
	// path is removed on close when unlinking the open file failed (as
	// it does on Windows); "" when the file was unlinked at once.
	path string
}

// BodyReadError marks a failure to read the client's request body (the
// client's fault), as opposed to a local one such as a full disk while
// spooling it.
type BodyReadError struct{ Err error }

func (e *BodyReadError) Error() string { return "reading request body: " + e.Err.Error() }
func (e *BodyReadError) Unwrap() error { return e.Err }

// readSpool reads r to EOF: memory first, then a temp file in dir.
// hint is the declared Content-Length, or -1. Errors are a
// *BodyReadError (the client's fault) or a disk error.
func readSpool(r io.Reader, hint int64, dir string) (*spool, error) {
	initial := 32 << 10
	if hint > 0 {
		initial = int(min(hint+1, spoolMem)) // +1: EOF shows up without growing
	}
	s := &spool{mem: make([]byte, 0, initial)}
	for len(s.mem) < spoolMem {
		if len(s.mem) == cap(s.mem) {
			s.mem = slices.Grow(s.mem, min(cap(s.mem), spoolMem-len(s.mem)))
		}
		n, err := r.Read(s.mem[len(s.mem):min(cap(s.mem), spoolMem)])
		s.mem = s.mem[:len(s.mem)+n]
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return nil, &BodyReadError{err}
		}
	}
	if err := s.spill(r, dir); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// spill copies the rest of r into a temp file, unlinked at once where
// the OS allows so the data never outlives the descriptor, even if
// tandem is killed.
func (s *spool) spill(r io.Reader, dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "tandem-body-*")
	if err != nil {
		return fmt.Errorf("spool request body: %w", err)
	}
	s.file = f
	if os.Remove(f.Name()) != nil {
		s.path = f.Name()
	}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("spool request body: %w", err)
			}
			s.fileSize += int64(n)
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return &BodyReadError{rerr}
		}
	}
}

func (s *spool) size() int64 { return int64(len(s.mem)) + s.fileSize }

// reader returns a fresh reader over the whole body. Readers share no
// state (the file is read with ReadAt), so a late read by a finished
// attempt cannot disturb the next one.
func (s *spool) reader() io.ReadCloser {
	if s.file == nil {
		return io.NopCloser(bytes.NewReader(s.mem))
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(s.mem), io.NewSectionReader(s.file, 0, s.fileSize)))
}

func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
		if s.path != "" {
			os.Remove(s.path)
		}
	}
}

// streamBody is the client's body passed through unbuffered. It counts
// what has been read, so a retry can tell whether the body is intact.
type streamBody struct {
	r io.Reader
	n atomic.Int64
}

func (s *streamBody) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n.Add(int64(n))
	return n, err
}

// errAttemptOver is what a finished attempt's body reads return.
var errAttemptOver = errors.New("request body read after its attempt ended")

// attemptBody is one attempt's view of a streamBody. The Transport
// closes a request body when done with it, failure included; that must
// end this attempt's reads, not the client's body the next attempt sends.
type attemptBody struct {
	s      *streamBody
	closed atomic.Bool
}

func (a *attemptBody) Read(p []byte) (int, error) {
	if a.closed.Load() {
		return 0, errAttemptOver
	}
	return a.s.Read(p)
}

func (a *attemptBody) Close() error {
	a.closed.Store(true)
	return nil
}

// errReadTimeout is the cause of a response cut off by ReadTimeout.
var errReadTimeout = errors.New("upstream read timeout")

// respBody wraps a response body: it ends the attempt on Close and cuts
// the body off when one Read waits longer than the idle timeout. Only
// time spent inside Read counts, so a slow client (the proxy blocked
// writing to it) is not blamed on the server.
type respBody struct {
	rc       io.ReadCloser
	c        *call
	idle     time.Duration
	start    time.Time
	reading  atomic.Int64 // while in Read: ns since start of the Read's start, plus 1; else 0
	timedOut atomic.Bool
	eof      atomic.Bool // a Read returned io.EOF: the whole body is in

	mu     sync.Mutex // guards timer and closed
	timer  *time.Timer
	closed bool
}

func newRespBody(rc io.ReadCloser, c *call, idle time.Duration) *respBody {
	rb := &respBody{rc: rc, c: c, idle: idle, start: time.Now()}
	rb.mu.Lock()
	rb.timer = time.AfterFunc(idle, rb.tick)
	rb.mu.Unlock()
	return rb
}

func (rb *respBody) Read(p []byte) (int, error) {
	rb.reading.Store(int64(time.Since(rb.start)) + 1)
	n, err := rb.rc.Read(p)
	rb.reading.Store(0)
	if err == io.EOF {
		rb.eof.Store(true)
	}
	if err != nil && err != io.EOF {
		if rb.timedOut.Load() {
			err = fmt.Errorf("%s: %w (no data for %v)", rb.c.b.url, errReadTimeout, rb.idle)
		}
		rb.c.ex.bodyFailed(rb.c.b.url, err)
	}
	return n, err
}

// tick runs at most every idle period: it re-arms for the time left
// unless a Read has been waiting the whole period, then cancels the
// attempt's context, which makes the Transport close the connection and
// the pending Read fail.
func (rb *respBody) tick() {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.closed {
		return
	}
	next := rb.idle
	if since := rb.reading.Load(); since != 0 {
		waited := time.Since(rb.start) - time.Duration(since-1)
		if waited >= rb.idle {
			rb.timedOut.Store(true)
			rb.c.cancel(errReadTimeout)
			rb.c.ex.log.Error("upstream read timeout", zap.String("server", rb.c.b.url),
				zap.Duration("read_timeout", rb.idle), zap.String("uri", rb.c.ex.in.RequestURI))
			return
		}
		next = rb.idle - waited
	}
	rb.timer.Reset(next)
}

func (rb *respBody) Close() error {
	rb.mu.Lock()
	if rb.closed {
		rb.mu.Unlock()
		return nil
	}
	rb.closed = true
	rb.timer.Stop()
	rb.mu.Unlock()
	err := rb.rc.Close()
	rb.c.done()
	return err
}

// tunnelBody wraps the connection of a 101 Switching Protocols response
// (a WebSocket). httputil.ReverseProxy copies both directions through
// it, so both are seen here: after idle time with no bytes either way
// the connection is closed, which ends ReverseProxy's copiers and the
// client connection with them.
type tunnelBody struct {
	rwc   io.ReadWriteCloser
	c     *call
	idle  time.Duration
	start time.Time
	last  atomic.Int64 // ns since start of the last traffic

	mu     sync.Mutex // guards timer and closed
	timer  *time.Timer
	closed bool
}

func newTunnelBody(rwc io.ReadWriteCloser, c *call, idle time.Duration) *tunnelBody {
	tb := &tunnelBody{rwc: rwc, c: c, idle: idle, start: time.Now()}
	tb.mu.Lock()
	tb.timer = time.AfterFunc(idle, tb.tick)
	tb.mu.Unlock()
	return tb
}

func (tb *tunnelBody) Read(p []byte) (int, error) {
	n, err := tb.rwc.Read(p)
	if n > 0 {
		tb.last.Store(int64(time.Since(tb.start)))
	}
	return n, err
}

func (tb *tunnelBody) Write(p []byte) (int, error) {
	n, err := tb.rwc.Write(p)
	if n > 0 {
		tb.last.Store(int64(time.Since(tb.start)))
	}
	return n, err
}

func (tb *tunnelBody) tick() {
	tb.mu.Lock()
	if tb.closed {
		tb.mu.Unlock()
		return
	}
	quiet := time.Since(tb.start) - time.Duration(tb.last.Load())
	if quiet < tb.idle {
		tb.timer.Reset(tb.idle - quiet)
		tb.mu.Unlock()
		return
	}
	tb.mu.Unlock()
	tb.c.ex.log.Info("upgraded connection idle, closing", zap.String("server", tb.c.b.url),
		zap.Duration("read_timeout", tb.idle), zap.String("uri", tb.c.ex.in.RequestURI))
	// A full Close, not just the connection: ReverseProxy does not close
	// a 101 body it rejects (protocol mismatch), and the attempt must
	// still end.
	tb.Close()
}

func (tb *tunnelBody) Close() error {
	tb.mu.Lock()
	if tb.closed {
		tb.mu.Unlock()
		return nil
	}
	tb.closed = true
	tb.timer.Stop()
	tb.mu.Unlock()
	err := tb.rwc.Close()
	tb.c.done()
	return err
}
