package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tandem-server/tandem/upstream/internal/headlimit"
	"github.com/tandem-server/tandem/upstream/internal/sockdial"
)

// h1Transport is the HTTP/1.1 client for one plain http:// or unix:
// server. It does a request's whole exchange on the caller's goroutine:
// dial (or take a pooled connection), write the request, read the head,
// and hand back a body that reads the connection directly.
//
// net/http's Transport spends three goroutines per connection (dialer,
// reader, writer) and a hand-off between each; against app servers that
// close every connection (gunicorn's sync workers) that work is repeated
// per request and cost more CPU than the proxying itself (bench/proxy.sh).
// Parsing and serialising stay the standard library's: http.Request.Write
// and http.ReadResponse.
type h1Transport struct {
	network, addr string
	dialer        *sockdial.Dialer
	firstByte     time.Duration
	maxIdle       int

	mu   sync.Mutex
	idle []*h1Conn // most recently used last

	// readers and writers hold the 8 KiB buffers of closed connections.
	// Against servers that close every connection (gunicorn's sync
	// workers) a fresh pair per request was half of the proxy's
	// allocation, and so of its garbage collection.
	readers, writers sync.Pool
}

func newH1Transport(ep endpoint, cfg *Config) *h1Transport {
	return &h1Transport{
		network:   ep.network,
		addr:      ep.addr,
		dialer:    sockdial.New(ep.network, ep.addr, cfg.ConnectTimeout),
		firstByte: cfg.FirstByteTimeout,
		maxIdle:   cfg.Keepalive,
	}
}

// h1Conn is one connection with its buffers, reused across requests.
type h1Conn struct {
	conn      net.Conn
	limit     headlimit.Reader // what br reads: conn, bounded while a head is read
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// errStale marks a pooled connection the server had already closed: the
// request never reached it, so it is sent again on a fresh connection.
var errStale = errors.New("pooled connection closed by the server")

// max1xx bounds informational replies before the final response.
const max1xx = 8

// RoundTrip sends r and returns its response. Dial errors come back
// unwrapped as *net.OpError (Op "dial"), so the caller knows the server
// was never reached. r.Body is always closed.
func (t *h1Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	for {
		pc := t.takeIdle()
		reused := pc != nil
		if pc == nil {
			c, err := t.dialer.Dial(r.Context())
			if err != nil {
				closeReqBody(r)
				return nil, err
			}
			pc = t.newConn(c)
		}
		resp, err := t.exchange(pc, r, reused)
		if !errors.Is(err, errStale) {
			return resp, err
		}
		// Send again only what can be sent again: no body, or one that
		// can be read from the start.
		if r.Body != nil && r.Body != http.NoBody {
			if r.GetBody == nil {
				return nil, err
			}
			body, gerr := r.GetBody()
			if gerr != nil {
				return nil, fmt.Errorf("%w (and the body cannot be resent: %v)", err, gerr)
			}
			r = r.Clone(r.Context())
			r.Body = body
		}
	}
}

func (t *h1Transport) exchange(pc *h1Conn, r *http.Request, reused bool) (*http.Response, error) {
	ctx := r.Context()
	cancel := &cancelDeadline{conn: pc.conn}
	stop := context.AfterFunc(ctx, cancel.fire)
	if t.firstByte > 0 {
		cancel.set(time.Now().Add(t.firstByte))
	}
	if err := ctx.Err(); err != nil {
		// AfterFunc runs its function on a goroutine of its own: a
		// request cancelled before this point would otherwise still go
		// out before the deadline it sets lands.
		stop()
		closeReqBody(r)
		t.closeConn(pc, true)
		return nil, context.Cause(ctx)
	}
	// A body is written by its own goroutine while the head is awaited: a
	// server may answer before reading it all (413), or stream a reply
	// while reading it, and must not deadlock against a blocked write.
	// Without a body there is nothing to overlap.
	var written chan error
	var werr error
	if r.Body != nil && r.Body != http.NoBody {
		written = make(chan error, 1)
		go func() { written <- writeRequest(pc.bw, r) }()
	} else {
		werr = writeRequest(pc.bw, r)
	}
	var resp *http.Response
	var rerr error
	if werr == nil {
		resp, rerr = pc.readHead(r)
	}
	if rerr != nil || werr != nil {
		pc.conn.Close() // also ends a body write still in progress
		stop()
		if written != nil {
			werr = <-written
		}
		switch {
		case ctx.Err() != nil:
			return nil, context.Cause(ctx)
		case reused && pc.br.Buffered() == 0 && (werr != nil && rerr == nil || isStaleRead(rerr)):
			// The server had closed the idle connection: nothing it
			// could act on was sent.
			return nil, fmt.Errorf("%w: %v", errStale, errors.Join(werr, rerr))
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			return nil, fmt.Errorf("timeout awaiting response headers (first_byte_timeout %v): %w", t.firstByte, rerr)
		case rerr != nil:
			return nil, fmt.Errorf("read response head: %w", rerr)
		default:
			return nil, fmt.Errorf("send request: %w", werr)
		}
	}
	if !cancel.set(time.Time{}) {
		pc.conn.Close()
		return nil, context.Cause(ctx)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if written != nil {
			// The tunnel must not interleave with the rest of a body.
			if werr := <-written; werr != nil {
				pc.conn.Close()
				stop()
				return nil, fmt.Errorf("send request: %w", werr)
			}
		}
		resp.Body = &h1Tunnel{br: pc.br, conn: pc.conn, stop: stop}
		return resp, nil
	}
	resp.Body = &h1Body{rc: resp.Body, t: t, pc: pc, stop: stop, written: written, keep: !resp.Close && !r.Close, ctx: ctx}
	return resp, nil
}

// writeRequest writes r (and closes its body) with one flush.
func writeRequest(bw *bufio.Writer, r *http.Request) error {
	if err := r.Write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// readHead reads the final response head, skipping 1xx replies other
// than 101.
func (pc *h1Conn) readHead(r *http.Request) (*http.Response, error) {
	pc.limit.N = headlimit.Max
	defer func() { pc.limit.N = -1 }()
	for range max1xx {
		resp, err := http.ReadResponse(pc.br, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 == 1 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return resp, nil
	}
	return nil, fmt.Errorf("more than %d informational (1xx) replies", max1xx)
}

// isStaleRead is how a closed pooled connection shows on the first read.
func isStaleRead(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read" && !op.Timeout()
}

func closeReqBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}

// cancelDeadline applies the first byte deadline and cancellation to one
// exchange's connection without one undoing the other: once cancelled,
// the deadline stays in the past.
type cancelDeadline struct {
	conn      net.Conn
	mu        sync.Mutex
	cancelled bool
}

// aLongTimeAgo is a deadline that has passed: it fails pending I/O now.
var aLongTimeAgo = time.Unix(1, 0)

func (c *cancelDeadline) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelled = true
	c.conn.SetDeadline(aLongTimeAgo)
}

// set arms (or with a zero time clears) the read deadline; false when the
// exchange was cancelled.
func (c *cancelDeadline) set(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelled {
		return false
	}
	c.conn.SetReadDeadline(t)
	return true
}

// h1BufSize is the size of a connection's read and write buffers.
const h1BufSize = 8 << 10

// newConn wraps c with buffers, reusing those of closed connections.
func (t *h1Transport) newConn(c net.Conn) *h1Conn {
	pc := &h1Conn{conn: c, limit: headlimit.Reader{R: c, N: -1}}
	if br, ok := t.readers.Get().(*bufio.Reader); ok {
		br.Reset(&pc.limit)
		pc.br = br
	} else {
		pc.br = bufio.NewReaderSize(&pc.limit, h1BufSize)
	}
	if bw, ok := t.writers.Get().(*bufio.Writer); ok {
		bw.Reset(c)
		pc.bw = bw
	} else {
		pc.bw = bufio.NewWriterSize(c, h1BufSize)
	}
	return pc
}

// closeConn closes pc and gives its buffers back. writerFree says that no
// request body write can still be using pc.bw; without it only the
// reader goes back. pc must not be used afterwards.
func (t *h1Transport) closeConn(pc *h1Conn, writerFree bool) error {
	err := pc.conn.Close()
	pc.br.Reset(nil)
	t.readers.Put(pc.br)
	if writerFree {
		pc.bw.Reset(nil)
		t.writers.Put(pc.bw)
	}
	return err
}

func (t *h1Transport) takeIdle() *h1Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		pc := t.idle[n-1]
		t.idle = t.idle[:n-1]
		if time.Since(pc.idleSince) < idleConnTimeout {
			return pc
		}
		t.closeConn(pc, true)
	}
	return nil
}

// putIdle keeps pc for the next request, or closes it when the pool is
// full.
func (t *h1Transport) putIdle(pc *h1Conn) {
	pc.idleSince = time.Now()
	t.mu.Lock()
	if len(t.idle) < t.maxIdle {
		t.idle = append(t.idle, pc)
		pc = nil
	}
	t.mu.Unlock()
	if pc != nil {
		t.closeConn(pc, true)
	}
}

// CloseIdleConnections is called when the group stops.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		t.closeConn(pc, true)
	}
}

// h1Body owns the connection once RoundTrip returns: read to the end, a
// keep-alive connection goes back to the pool; closed early, it is closed.
type h1Body struct {
	rc   io.ReadCloser
	t    *h1Transport
	pc   *h1Conn
	stop func() bool
	// written reports the end of a body write still running, or is nil.
	written chan error
	keep    bool
	ctx     context.Context
	eof     bool
	done    bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.ctx.Err() != nil:
		err = fmt.Errorf("read response body: %w", context.Cause(b.ctx))
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	// A cancellation that already fired has spoiled the connection's
	// deadline; stop() reports whether it had not.
	keep := b.stop() && b.eof && b.keep && b.pc.br.Buffered() == 0
	writerFree := b.written == nil
	if keep && b.written != nil {
		// Reuse only after the whole request went out; a server that
		// answered without reading it all gets the connection closed.
		select {
		case err := <-b.written:
			keep, writerFree = err == nil, true
		default:
			keep = false
		}
	}
	if keep {
		b.t.putIdle(b.pc)
		return nil
	}
	return b.t.closeConn(b.pc, writerFree)
}

// h1Tunnel is the Body of a 101 reply: reads see any bytes buffered after
// the head, then the connection; writes go straight to the connection.
type h1Tunnel struct {
	br   *bufio.Reader
	conn net.Conn
	stop func() bool
	once sync.Once
}

func (t *h1Tunnel) Read(p []byte) (int, error)  { return t.br.Read(p) }
func (t *h1Tunnel) Write(p []byte) (int, error) { return t.conn.Write(p) }

func (t *h1Tunnel) Close() error {
	t.once.Do(func() {
		t.stop()
		t.conn.Close()
	})
	return nil
}

var (
	_ http.RoundTripper  = (*h1Transport)(nil)
	_ io.ReadWriteCloser = (*h1Tunnel)(nil)
)
