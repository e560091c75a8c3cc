package edge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sendIdleTimeout bounds how long one write to a client may block: a client
// that stops reading is dropped after it, as with nginx's send_timeout,
// while a slow but moving download may take as long as it needs. Used when
// write_timeout (a bound on the whole response) is off.
const sendIdleTimeout = 60 * time.Second

// sendfileChunk is how much one sendfile call may move before the write
// deadline is pushed forward again. A chunk must get through within half
// the idle timeout, so it bounds the slowest client served: 256 KiB in 30s
// is about 8.5 KiB/s.
const sendfileChunk = 256 << 10

// edgeListener hands out edgeConns.
type edgeListener struct {
	net.Listener
	// sendTimeout is the per-write idle timeout; 0 leaves write deadlines
	// to net/http (write_timeout).
	sendTimeout time.Duration
}

func (l *edgeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return &edgeConn{TCPConn: tc, sendTimeout: l.sendTimeout}, nil
}

// edgeConn is a client TCP connection that makes net/http's timeouts cheap.
//
// net/http moves the read deadline five or six times per request (idle,
// header, whole request, and around its background read) and clears the
// write deadline after each response. Each move re-arms a runtime timer,
// which showed up as ~10% of the CPU of a 1 KiB static response. edgeConn
// arms a timer only when a deadline gets earlier than the armed one; a
// later or cleared deadline is remembered, and a read that times out
// before the wanted deadline re-arms and retries. Deadlines are enforced
// exactly as asked, just re-armed lazily.
//
// It also gives writes an idle timeout (sendTimeout) and keeps
// io.ReaderFrom, so net/http still sends files with sendfile(2).
type edgeConn struct {
	*net.TCPConn
	sendTimeout time.Duration

	// Write side. Mostly the goroutine writing the response touches it,
	// but under TLS, tls.Conn.Close sets write deadlines from whichever
	// goroutine closes the connection (its close_notify alert), so it
	// has its own lock; uncontended, it costs nanoseconds per write.
	wmu       sync.Mutex
	wDeadline time.Time // the write deadline now armed; guarded by wmu

	// Packet coalescing (packethint.Hinter): moreNext marks the next
	// write as not the response's last; held records that the last write
	// went out with MSG_MORE and may still sit in the socket. Atomic
	// because under TLS the goroutine closing the connection sets write
	// deadlines while another writes.
	moreNext atomic.Bool
	held     atomic.Bool

	mu      sync.Mutex // guards the read side: net/http's background read races SetReadDeadline
	rWanted time.Time  // the read deadline net/http asked for; zero = none
	rArmed  time.Time  // the read deadline the runtime has; zero = none
}

// SetReadDeadline arms t only if it is earlier than what is armed, or what
// is armed has passed (net/http's "abort pending read" leaves a deadline in
// the past; reading against it would fail, allocate an error and retry).
// See the type comment.
func (c *edgeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rWanted = t
	if t.IsZero() {
		// A cleared deadline after a past one (a hijack after net/http's
		// abort of its background read) must reach the socket: readers
		// that bypass Read would otherwise time out at once.
		if !c.rArmed.IsZero() && c.rArmed.Before(time.Now()) {
			return c.armReadLocked(time.Time{})
		}
		return nil
	}
	if c.rArmed.IsZero() || t.Before(c.rArmed) || c.rArmed.Before(time.Now()) {
		return c.armReadLocked(t)
	}
	return nil
}

func (c *edgeConn) armReadLocked(t time.Time) error {
	c.rArmed = t
	return c.TCPConn.SetReadDeadline(t)
}

// Read retries a timeout that fired before the wanted deadline.
func (c *edgeConn) Read(p []byte) (int, error) {
	for {
		n, err := c.TCPConn.Read(p)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		c.mu.Lock()
		spurious := c.rWanted.IsZero() || time.Now().Before(c.rWanted)
		var armErr error
		if spurious {
			armErr = c.armReadLocked(c.rWanted)
		}
		c.mu.Unlock()
		if !spurious {
			return n, err
		}
		if armErr != nil {
			return 0, armErr
		}
	}
}

// refreshWrite pushes the write deadline when less than half of the idle
// timeout is left: every write still gets at least sendTimeout/2.
func (c *edgeConn) refreshWrite() error {
	if c.sendTimeout == 0 {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	now := time.Now()
	if c.wDeadline.Sub(now) > c.sendTimeout/2 {
		return nil
	}
	c.wDeadline = now.Add(c.sendTimeout)
	return c.TCPConn.SetWriteDeadline(c.wDeadline)
}

func (c *edgeConn) Write(p []byte) (int, error) {
	if err := c.refreshWrite(); err != nil {
		return 0, err
	}
	if c.moreNext.Load() {
		c.moreNext.Store(false)
		return c.writeMore(p)
	}
	if c.held.Load() {
		c.held.Store(false) // this write pushes what was held
	}
	return c.TCPConn.Write(p)
}

// MoreFollows implements packethint.Hinter.
func (c *edgeConn) MoreFollows() { c.moreNext.Store(true) }

// writeMore writes p with MSG_MORE: the kernel sends full packets of it
// but keeps the tail until the next write (or push) adds to it.
func (c *edgeConn) writeMore(p []byte) (int, error) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := syscall.SendmsgN(int(fd), p[n:], nil, nil, syscall.MSG_MORE)
			if m > 0 {
				n += m
			}
			switch e {
			case nil:
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until the socket drains
			default:
				werr = os.NewSyscallError("sendmsg", e)
				return true
			}
		}
		return true
	})
	if n > 0 {
		c.held.Store(true)
	}
	if werr == nil {
		werr = err
	}
	return n, werr
}

// push sends what MSG_MORE held back: setting TCP_NODELAY (Go's default,
// so no change) pushes pending frames out.
func (c *edgeConn) push() {
	c.held.Store(false)
	_ = c.TCPConn.SetNoDelay(true) // a failing socket fails the next write
}

// SetWriteDeadline keeps the idle deadline when net/http clears the
// deadline after each response (it does so even without write_timeout).
// A real deadline (write_timeout, Shutdown) replaces it.
func (c *edgeConn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// net/http clears the write deadline after every response: the end
	// of it, so nothing may stay held, and an unused hint must not leak
	// into the next response.
	if t.IsZero() {
		c.moreNext.Store(false)
		if c.held.Load() {
			c.push()
		}
	}
	if t.IsZero() && c.sendTimeout != 0 && !c.wDeadline.IsZero() {
		return nil
	}
	c.wDeadline = t
	return c.TCPConn.SetWriteDeadline(t)
}

// SetDeadline sets both directions, as net.Conn does.
func (c *edgeConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// WriteTo copies through Read, so reads from a hijacked connection (a
// WebSocket tunnel's io.Copy) get the deadline handling above; the
// embedded TCPConn.WriteTo would read the socket directly against a
// deadline that may be stale.
func (c *edgeConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}

// ReadFrom moves src in chunks so a long sendfile is bounded per chunk,
// not as a whole. TCPConn.ReadFrom recognises *io.LimitedReader around an
// *os.File and still uses sendfile. An *io.SectionReader over an *os.File
// is sent with sendfile at explicit offsets (see sendSection).
func (c *edgeConn) ReadFrom(src io.Reader) (int64, error) {
	c.moreNext.Store(false)
	n, err := c.readFrom(src)
	if n > 0 && c.held.Load() {
		c.held.Store(false) // the last piece was pushed, and what was held with it
	}
	return n, err
}

func (c *edgeConn) readFrom(src io.Reader) (int64, error) {
	if sr, ok := src.(*io.SectionReader); ok {
		if n, err, handled := c.sendSection(sr); handled {
			return n, err
		}
	}
	if c.sendTimeout == 0 {
		return c.TCPConn.ReadFrom(src)
	}
	var total int64
	for {
		if err := c.refreshWrite(); err != nil {
			return total, err
		}
		lr, isLimited := src.(*io.LimitedReader)
		var n int64
		var err error
		if isLimited && lr.N <= sendfileChunk {
			n, err = c.TCPConn.ReadFrom(lr)
			return total + n, err
		}
		if isLimited {
			// Keep the caller's limit: take one chunk of it at a time.
			chunk := &io.LimitedReader{R: lr.R, N: sendfileChunk}
			n, err = c.TCPConn.ReadFrom(chunk)
			lr.N -= n
		} else {
			n, err = c.TCPConn.ReadFrom(&io.LimitedReader{R: src, N: sendfileChunk})
		}
		total += n
		if err != nil || n < sendfileChunk {
			return total, err
		}
	}
}

// sendSection sends what is left of sr with sendfile(2) at explicit
// offsets, which leave the file's own offset alone: the static file cache
// shares one open descriptor among all requests for a file, as nginx's
// open_file_cache does, so no request pays open/fstat/close. handled is
// false when sr is not over an *os.File; nothing was read then.
func (c *edgeConn) sendSection(sr *io.SectionReader) (written int64, err error, handled bool) {
	ra, base, size := sr.Outer()
	f, ok := ra.(*os.File)
	if !ok {
		return 0, nil, false
	}
	pos, err := sr.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, nil, false
	}
	fileRC, err := f.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	sockRC, err := c.TCPConn.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	off := base + pos
	remain := size - pos
	// Control holds a reference on the file descriptor, so a concurrent
	// Close (the cache dropping the entry) waits for the send to finish.
	ctlErr := fileRC.Control(func(ffd uintptr) {
		for remain > 0 && err == nil {
			if err = c.refreshWrite(); err != nil {
				return
			}
			chunk := min(remain, sendfileChunk)
			var sent int64
			werr := sockRC.Write(func(sfd uintptr) bool {
				for sent < chunk {
					n, e := syscall.Sendfile(int(sfd), int(ffd), &off, int(chunk-sent))
					if n > 0 {
						sent += int64(n)
					}
					switch {
					case e == syscall.EINTR:
						continue
					case e == syscall.EAGAIN:
						return false // wait until the socket drains
					case e != nil:
						err = os.NewSyscallError("sendfile", e)
						return true
					case n == 0:
						err = io.ErrUnexpectedEOF // the file shrank
						return true
					}
				}
				return true
			})
			written += sent
			remain -= sent
			if err == nil && werr != nil {
				err = werr
			}
		}
	})
	if err == nil && ctlErr != nil {
		err = fmt.Errorf("sendfile: %w", ctlErr)
	}
	_, _ = sr.Seek(pos+written, io.SeekStart)
	return written, err, true
}

var (
	_ io.ReaderFrom = (*edgeConn)(nil)
	_ io.WriterTo   = (*edgeConn)(nil)
	_ net.Listener  = (*edgeListener)(nil)
)
