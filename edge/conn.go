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
// deadline is pushed forward again.
const sendfileChunk = 4 << 20

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
type idleSendConn struct {
	*net.TCPConn
	timeout time.Duration
}

func (c *idleSendConn) Write(p []byte) (int, error) {
	if err := c.TCPConn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.TCPConn.Write(p)
}

// ReadFrom moves src in chunks so a long sendfile is bounded per chunk,
// not as a whole. TCPConn.ReadFrom recognises *io.LimitedReader around an
// *os.File and still uses sendfile.
func (c *idleSendConn) ReadFrom(src io.Reader) (int64, error) {
	var total int64
	for {
		if err := c.TCPConn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
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
