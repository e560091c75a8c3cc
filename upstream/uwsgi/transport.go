package uwsgi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tandem-server/tandem/upstream/internal/headlimit"
	"github.com/tandem-server/tandem/upstream/internal/sockdial"
)

// ErrLengthRequired is returned (wrapped) by RoundTrip for a request body
// of unknown length (ContentLength < 0, or 0 with a Body other than nil or
// http.NoBody, as net/http reads it). The uwsgi protocol announces the
// body's length in CONTENT_LENGTH before sending it, so such a body must be
// spooled first, as nginx does for uwsgi_pass; callers answer 411 or spool.
var ErrLengthRequired = errors.New("uwsgi: request body of unknown length cannot be sent (spool it first)")

const (
	// max1xx bounds the informational replies skipped before the final one.
	max1xx = 8
	// uwsgiDefaultBufferSize is uWSGI's default --buffer-size: a larger
	// vars block is dropped with a connection reset, which the error hints at.
	uwsgiDefaultBufferSize = 4096
)

// Transport sends each request to one uwsgi server over a new connection
// (the protocol has no keep-alive). The zero value dials TCP and has no
// timeouts beyond the request's context. It is safe for concurrent use.
type Transport struct {
	// Network is "tcp" (the default when empty) or "unix".
	Network string
	// Addr is HOST:PORT for tcp, the socket's path for unix.
	Addr string
	// DialTimeout bounds connection setup; 0 leaves it to r.Context().
	DialTimeout time.Duration
	// FirstByteTimeout bounds the wait for the response head once the
	// request has been sent, and each write of the request to a server
	// that has stopped reading it; 0 means no limit. The wait is measured
	// after the body is sent so a slow upload does not count against it.
	FirstByteTimeout time.Duration

	dialOnce sync.Once
	dialer   *sockdial.Dialer
}

// RoundTrip sends r as a uwsgi packet and returns the reply. The returned
// Body reads from the connection; closing it closes the connection. For a
// 101 Switching Protocols reply the Body is also an io.Writer onto the
// connection, for tunnels such as WebSocket.
//
// A failure to connect is returned wrapping the *net.OpError (Op "dial")
// from the dialer, so callers can tell "never reached the upstream" (safe
// to retry elsewhere) with errors.As; every later failure is wrapped
// differently. A head too large for the protocol wraps ErrVarsTooLarge, a
// body of unknown length ErrLengthRequired; a timed-out wait for the head
// wraps os.ErrDeadlineExceeded, and a cancelled request r.Context()'s error.
// r.Body is always closed, possibly after RoundTrip returns.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	body := r.Body
	if body == http.NoBody {
		body = nil
	}
	closeBody := func() {
		if body != nil {
			body.Close()
		}
	}
	switch {
	case body != nil && r.ContentLength <= 0:
		closeBody()
		return nil, ErrLengthRequired
	case body == nil && r.ContentLength > 0:
		return nil, fmt.Errorf("uwsgi: request has ContentLength %d but no Body", r.ContentLength)
	}
	packet, err := appendPacket(make([]byte, 0, 1024), r)
	if err != nil {
		closeBody()
		return nil, err
	}
	ctx := r.Context()
	conn, err := t.dial(ctx)
	if err != nil {
		closeBody()
		return nil, fmt.Errorf("uwsgi: %w", err)
	}
	// Cancelling the request aborts every read and write on the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	x := &exchange{conn: conn, firstByte: t.FirstByteTimeout}
	written := make(chan error, 1)
	go x.send(packet, body, r.ContentLength, written)

	resp, err := x.receive(r)
	if err != nil {
		conn.Close()
		stop()
		return nil, t.headError(ctx, err, written, len(packet)-4)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The tunnel must not interleave with the rest of a request body.
		if werr := <-written; werr != nil {
			conn.Close()
			stop()
			return nil, fmt.Errorf("uwsgi: send request: %w", werr)
		}
		resp.Body = &tunnel{br: x.br, conn: conn, stop: stop}
		return resp, nil
	}
	resp.Body = &responseBody{rc: resp.Body, conn: conn, stop: stop, ctx: ctx}
	return resp, nil
}

func (t *Transport) dial(ctx context.Context) (net.Conn, error) {
	t.dialOnce.Do(func() {
		network := t.Network
		if network == "" {
			network = "tcp"
		}
		// One connection per request, so the dial is as lean as it can
		// be (sockdial): no keep-alive probes, no per-dial resolution.
		t.dialer = sockdial.New(network, t.Addr, t.DialTimeout)
	})
	return t.dialer.Dial(ctx)
}

// headError explains why no response head arrived, preferring the cause:
// a failed request body, then the request's context, then the read error.
func (t *Transport) headError(ctx context.Context, err error, written <-chan error, varsSize int) error {
	var werr error
	select {
	case werr = <-written:
	default: // still sending (blocked on the client's body); the conn is closed now
	}
	var be *bodyError
	if errors.As(werr, &be) {
		return fmt.Errorf("uwsgi: send request: %w", werr)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("uwsgi: %w", context.Cause(ctx))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("uwsgi: no response head within %v: %w", t.FirstByteTimeout, err)
	}
	if varsSize > uwsgiDefaultBufferSize && (errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
		err = fmt.Errorf("%w (the request's vars are %d bytes; uWSGI drops packets larger than its --buffer-size, 4096 by default)", err, varsSize)
	}
	if werr != nil {
		return fmt.Errorf("%w; send request: %w", err, werr)
	}
	return err
}

// isReset reports a connection reset, which is how uWSGI refuses a packet.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}

// appendPacket appends the 4-byte uwsgi header (modifier1 0 = a WSGI/HTTP
// request, 16-bit little-endian datasize, modifier2 0) and the vars block.
func appendPacket(dst []byte, r *http.Request) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := AppendVars(dst, r)
	if err != nil {
		return dst[:start], err
	}
	binary.LittleEndian.PutUint16(dst[start+1:], uint16(len(dst)-start-4))
	return dst, nil
}

// exchange is one request on one connection: send writes the request while
// receive reads the reply, concurrently, so an upstream that answers before
// reading the whole body (a 413, say) is heard instead of deadlocking.
type exchange struct {
	conn      net.Conn
	firstByte time.Duration
	br        *bufio.Reader
	limit     headlimit.Reader

	mu       sync.Mutex
	headRead bool // guarded by mu: the head is in, FirstByteTimeout no longer applies
}

// bodyError marks a failure reading the client's body, as opposed to
// writing to the upstream: the exchange cannot complete, so send closes
// the connection and RoundTrip reports this error rather than the read
// that the close interrupted.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// send writes the packet and exactly n body bytes, then starts the first
// byte timer. It always closes body and reports on done.
func (x *exchange) send(packet []byte, body io.ReadCloser, n int64, done chan<- error) {
	err := x.sendBody(packet, body, n)
	if body != nil {
		body.Close()
	}
	done <- err
	var be *bodyError
	if errors.As(err, &be) {
		x.conn.Close() // the upstream would wait for the missing bytes forever
	}
	if err == nil {
		x.armFirstByte()
	}
}

func (x *exchange) sendBody(packet []byte, body io.Reader, n int64) error {
	if err := x.write(packet); err != nil {
		return err
	}
	if body == nil {
		return nil
	}
	buf := make([]byte, min(n, 32<<10))
	for n > 0 {
		m, err := body.Read(buf[:min(n, int64(len(buf)))])
		if m > 0 {
			if werr := x.write(buf[:m]); werr != nil {
				return werr
			}
			n -= int64(m)
		}
		switch {
		case n == 0:
		case errors.Is(err, io.EOF):
			return &bodyError{fmt.Errorf("%d bytes short of Content-Length: %w", n, io.ErrUnexpectedEOF)}
		case err != nil:
			return &bodyError{err}
		}
	}
	return nil
}

func (x *exchange) write(b []byte) error {
	if x.firstByte > 0 {
		if err := x.conn.SetWriteDeadline(time.Now().Add(x.firstByte)); err != nil {
			return err
		}
	}
	_, err := x.conn.Write(b)
	return err
}

// armFirstByte starts the FirstByteTimeout clock unless the head is
// already in (an early reply).
func (x *exchange) armFirstByte() {
	if x.firstByte <= 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.headRead {
		x.conn.SetReadDeadline(time.Now().Add(x.firstByte))
	}
}

// receive reads the final response head, skipping 1xx replies other than
// 101 (a uWSGI app may answer Expect: 100-continue itself), then lifts the
// head's size limit and the first byte deadline for the body.
func (x *exchange) receive(r *http.Request) (*http.Response, error) {
	x.limit = headlimit.Reader{R: x.conn, N: headlimit.Max}
	x.br = bufio.NewReader(&x.limit)
	for range max1xx {
		resp, err := ReadResponse(x.br, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 == 1 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		x.limit.N = -1
		x.mu.Lock()
		x.headRead = true
		x.conn.SetReadDeadline(time.Time{})
		x.mu.Unlock()
		return resp, nil
	}
	return nil, fmt.Errorf("uwsgi: more than %d informational (1xx) replies", max1xx)
}

// responseBody owns the connection once RoundTrip returns.
type responseBody struct {
	rc   io.ReadCloser
	conn net.Conn
	stop func() bool
	ctx  context.Context
	once sync.Once
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		// The read failed because cancelling the request closed the
		// connection: report the cancellation, as net/http does.
		err = fmt.Errorf("uwsgi: read response body: %w", context.Cause(b.ctx))
	}
	return n, err
}

// Close closes the connection without draining: there is no keep-alive to
// save, and draining would wait for a long stream to finish.
func (b *responseBody) Close() error {
	b.once.Do(func() {
		b.stop()
		b.conn.Close()
	})
	return nil
}

// tunnel is the Body of a 101 reply: reads see any bytes buffered after
// the head, then the connection; writes go straight to the connection.
type tunnel struct {
	br   *bufio.Reader
	conn net.Conn
	stop func() bool
	once sync.Once
}

func (t *tunnel) Read(p []byte) (int, error)  { return t.br.Read(p) }
func (t *tunnel) Write(p []byte) (int, error) { return t.conn.Write(p) }

func (t *tunnel) Close() error {
	t.once.Do(func() {
		t.stop()
		t.conn.Close()
	})
	return nil
}

var (
	_ http.RoundTripper  = (*Transport)(nil)
	_ io.ReadWriteCloser = (*tunnel)(nil)
)
