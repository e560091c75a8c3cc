package edge

import (
	"io"
	"net"
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

// idleSendListener hands out connections whose every write gets a fresh
// deadline.
type idleSendListener struct {
	net.Listener
	timeout time.Duration
}

func (l *idleSendListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return &idleSendConn{TCPConn: tc, timeout: l.timeout}, nil
}

// idleSendConn is a TCP connection with a per-write idle deadline. It
// keeps io.ReaderFrom, so net/http still sends files with sendfile(2).
//
// Moving a runtime timer on every write is measurable on small responses,
// so the deadline is only pushed when less than half of the timeout is
// left: every write still has at least timeout/2 to make progress.
type idleSendConn struct {
	*net.TCPConn
	timeout  time.Duration
	deadline time.Time // the write deadline now set; only the conn's writer touches it
}

func (c *idleSendConn) refresh() error {
	now := time.Now()
	if c.deadline.Sub(now) > c.timeout/2 {
		return nil
	}
	c.deadline = now.Add(c.timeout)
	return c.TCPConn.SetWriteDeadline(c.deadline)
}

func (c *idleSendConn) Write(p []byte) (int, error) {
	if err := c.refresh(); err != nil {
		return 0, err
	}
	return c.TCPConn.Write(p)
}

// SetWriteDeadline is net/http's (write_timeout); it replaces ours.
func (c *idleSendConn) SetWriteDeadline(t time.Time) error {
	c.deadline = t
	return c.TCPConn.SetWriteDeadline(t)
}

// SetDeadline sets both directions, as net.Conn does.
func (c *idleSendConn) SetDeadline(t time.Time) error {
	c.deadline = t
	return c.TCPConn.SetDeadline(t)
}

// ReadFrom moves src in chunks so a long sendfile is bounded per chunk,
// not as a whole. TCPConn.ReadFrom recognises *io.LimitedReader around an
// *os.File and still uses sendfile.
func (c *idleSendConn) ReadFrom(src io.Reader) (int64, error) {
	var total int64
	for {
		if err := c.refresh(); err != nil {
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
	_ io.ReaderFrom = (*idleSendConn)(nil)
	_ net.Listener  = (*idleSendListener)(nil)
)
