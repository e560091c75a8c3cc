package edge

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
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
	return c.TCPConn.Write(p)
}

// SetWriteDeadline keeps the idle deadline when net/http clears the
// deadline after each response (it does so even without write_timeout).
// A real deadline (write_timeout, Shutdown) replaces it.
func (c *edgeConn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
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
// *os.File and still uses sendfile.
func (c *edgeConn) ReadFrom(src io.Reader) (int64, error) {
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

var (
	_ io.ReaderFrom = (*edgeConn)(nil)
	_ io.WriterTo   = (*edgeConn)(nil)
	_ net.Listener  = (*edgeListener)(nil)
)
