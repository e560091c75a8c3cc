package uwsgi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-server/tandem/upstream/internal/headlimit"
)

// packet is what the in-test uwsgi server received.
type packet struct {
	mod1, mod2 byte
	vars       map[string]string
	body       io.Reader // CONTENT_LENGTH bytes of the connection
	conn       net.Conn
}

// serveUWSGI starts a minimal uwsgi server on network ("tcp" or "unix")
// that reads each packet and hands it to handle, which writes the reply.
// It returns a Transport pointed at it. Handlers finish before the test ends.
func serveUWSGI(t *testing.T, network string, handle func(p *packet)) *Transport {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "u.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				p, err := readPacket(conn)
				if err != nil {
					t.Errorf("server: %v", err)
					return
				}
				handle(p)
			})
		}
	})
	return &Transport{Network: network, Addr: ln.Addr().String(), DialTimeout: 2 * time.Second}
}

func readPacket(conn net.Conn) (*packet, error) {
	var head [4]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return nil, fmt.Errorf("read packet header: %w", err)
	}
	block := make([]byte, int(head[1])|int(head[2])<<8)
	if _, err := io.ReadFull(conn, block); err != nil {
		return nil, fmt.Errorf("read vars: %w", err)
	}
	vars, err := ParseVars(block)
	if err != nil {
		return nil, err
	}
	n, _ := strconv.ParseInt(vars["CONTENT_LENGTH"], 10, 64)
	return &packet{mod1: head[0], mod2: head[3], vars: vars, body: io.LimitReader(conn, n), conn: conn}, nil
}

func newRequest(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), method, "http://app.example"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// A GET travels as one packet with modifiers 0/0 over TCP and unix sockets.
func TestRoundTrip_GET(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			tr := serveUWSGI(t, network, func(p *packet) {
				if p.mod1 != 0 || p.mod2 != 0 {
					t.Errorf("modifiers = %d, %d; want 0, 0", p.mod1, p.mod2)
				}
				body := p.vars["REQUEST_METHOD"] + " " + p.vars["REQUEST_URI"] + " " + p.vars["HTTP_X_TEST"]
				fmt.Fprintf(p.conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Served: yes\r\n\r\n%s", len(body), body)
			})
			r := newRequest(t, "GET", "/path?q=1", nil)
			r.Header.Set("X-Test", "hello")
			resp, err := tr.RoundTrip(r)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Served") != "yes" {
				t.Errorf("status %d, X-Served %q", resp.StatusCode, resp.Header.Get("X-Served"))
			}
			if got := readBody(t, resp); got != "GET /path?q=1 hello" {
				t.Errorf("body = %q", got)
			}
		})
	}
}

// The request body streams after the vars, exactly CONTENT_LENGTH bytes.
func TestRoundTrip_POSTBody(t *testing.T) {
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		h := sha256.New()
		n, err := io.Copy(h, p.body)
		if err != nil {
			t.Errorf("server read body: %v", err)
		}
		body := fmt.Sprintf("%d %x", n, h.Sum(nil))
		fmt.Fprintf(p.conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	sum := sha256.Sum256(payload)
	resp, err := tr.RoundTrip(newRequest(t, "POST", "/upload", bytes.NewReader(payload)))
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	if got, want := readBody(t, resp), fmt.Sprintf("%d %s", len(payload), hex.EncodeToString(sum[:])); got != want {
		t.Errorf("server saw %q, want %q", got, want)
	}
}

// trackingBody records whether the transport closed the request body.
type trackingBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackingBody) Close() error { b.closed.Store(true); return nil }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An upstream that answers before reading the body (a 413) is heard: the
// body is sent concurrently, so neither side deadlocks, and the request
// body is still closed.
func TestRoundTrip_EarlyReplyWhileSendingBody(t *testing.T) {
	replyRead := make(chan struct{})
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		io.WriteString(p.conn, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!")
		// Read nothing until the client has the reply: a transport that
		// sent the whole 32 MiB body first would be stuck behind full
		// socket buffers and never get here.
		select {
		case <-replyRead:
		case <-time.After(5 * time.Second):
			t.Error("client did not read the early reply while its body was unsent")
			return
		}
		// Lingering close: stop writing, drain, so the reply is not lost to a reset.
		p.conn.(*net.TCPConn).CloseWrite()
		p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, p.conn)
	})
	body := &trackingBody{Reader: bytes.NewReader(make([]byte, 32<<20))}
	r := newRequest(t, "POST", "/", nil)
	r.Body, r.ContentLength = body, 32<<20
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	close(replyRead)
	if resp.StatusCode != 413 || readBody(t, resp) != "big!" {
		t.Fatalf("got %d, want the early 413", resp.StatusCode)
	}
	waitFor(t, "request body closed", body.closed.Load)
}

// A body shorter than its Content-Length aborts the exchange with that
// cause instead of leaving the upstream waiting for the missing bytes.
func TestRoundTrip_ShortBody(t *testing.T) {
	gotEOF := make(chan error, 1)
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		_, err := io.ReadAll(p.body)
		gotEOF <- err
	})
	r := newRequest(t, "POST", "/", nil)
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader("12345")), 10
	_, err := tr.RoundTrip(r)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "request body") {
		t.Fatalf("err = %v, want a request body error wrapping io.ErrUnexpectedEOF", err)
	}
	select {
	case <-gotEOF: // the server saw the connection end instead of hanging
	case <-time.After(5 * time.Second):
		t.Fatal("server still waiting for the body")
	}
}

// Bodies of unknown length cannot be framed by CONTENT_LENGTH.
func TestRoundTrip_UnknownLengthBody(t *testing.T) {
	tr := &Transport{Addr: "127.0.0.1:1"}
	for _, n := range []int64{-1, 0} {
		body := &trackingBody{Reader: strings.NewReader("data")}
		r := newRequest(t, "POST", "/", nil)
		r.Body, r.ContentLength = body, n
		if _, err := tr.RoundTrip(r); !errors.Is(err, ErrLengthRequired) {
			t.Errorf("ContentLength %d: err = %v, want ErrLengthRequired", n, err)
		}
		if !body.closed.Load() {
			t.Errorf("ContentLength %d: body not closed", n)
		}
	}
}

// A head too large for the protocol fails before dialling.
func TestRoundTrip_VarsTooLarge(t *testing.T) {
	tr := &Transport{Addr: closedAddr(t)}
	r := newRequest(t, "GET", "/", nil)
	r.Header.Set("Cookie", strings.Repeat("c", 70000))
	_, err := tr.RoundTrip(r)
	if !errors.Is(err, ErrVarsTooLarge) {
		t.Fatalf("err = %v, want ErrVarsTooLarge", err)
	}
	if isDialError(err) {
		t.Fatalf("err = %v looks like a dial failure", err)
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Failing to connect is a dial *net.OpError (the request never reached
// the upstream, so it may be retried elsewhere); failing afterwards is not.
func TestRoundTrip_DialFailureIsDistinguishable(t *testing.T) {
	for name, tr := range map[string]*Transport{
		"tcp refused":      {Network: "tcp", Addr: closedAddr(t)},
		"unix missing":     {Network: "unix", Addr: filepath.Join(t.TempDir(), "absent.sock")},
		"bad network name": {Network: "tcp9", Addr: "127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			body := &trackingBody{Reader: strings.NewReader("x")}
			r := newRequest(t, "POST", "/", nil)
			r.Body, r.ContentLength = body, 1
			_, err := tr.RoundTrip(r)
			if !isDialError(err) {
				t.Fatalf("err = %v, want a dial *net.OpError", err)
			}
			if !body.closed.Load() {
				t.Error("request body not closed")
			}
		})
	}
	t.Run("closed after the request was sent", func(t *testing.T) {
		tr := serveUWSGI(t, "tcp", func(p *packet) {}) // reads the packet, answers nothing
		_, err := tr.RoundTrip(newRequest(t, "GET", "/", nil))
		if err == nil || isDialError(err) {
			t.Fatalf("err = %v, want a non-dial failure", err)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("err = %v, want it to wrap io.ErrUnexpectedEOF", err)
		}
	})
}

// A request head over uWSGI's default 4 KiB buffer that gets dropped says so.
func TestRoundTrip_BufferSizeHint(t *testing.T) {
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		p.conn.(*net.TCPConn).SetLinger(0) // reset, as uWSGI does
	})
	r := newRequest(t, "GET", "/", nil)
	r.Header.Set("Cookie", strings.Repeat("c", 5000))
	_, err := tr.RoundTrip(r)
	if err == nil || !strings.Contains(err.Error(), "--buffer-size") {
		t.Fatalf("err = %v, want a hint about uWSGI's --buffer-size", err)
	}
}

// FirstByteTimeout bounds the wait for the head, and only that: a slow
// body after the head, or a slow upload before it, does not trip it.
func TestRoundTrip_FirstByteTimeout(t *testing.T) {
	const fbt = 150 * time.Millisecond
	t.Run("silent upstream", func(t *testing.T) {
		release := make(chan struct{})
		tr := serveUWSGI(t, "tcp", func(p *packet) { <-release })
		defer close(release)
		tr.FirstByteTimeout = fbt
		start := time.Now()
		_, err := tr.RoundTrip(newRequest(t, "GET", "/", nil))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if isDialError(err) {
			t.Fatalf("err = %v looks like a dial failure", err)
		}
		if d := time.Since(start); d < fbt || d > 5*time.Second {
			t.Fatalf("timed out after %v, want about %v", d, fbt)
		}
	})
	t.Run("slow body after the head", func(t *testing.T) {
		tr := serveUWSGI(t, "tcp", func(p *packet) {
			io.WriteString(p.conn, "HTTP/1.1 200 OK\r\n\r\nfirst ")
			time.Sleep(3 * fbt) // the delay under test, not a synchronisation
			io.WriteString(p.conn, "second")
		})
		tr.FirstByteTimeout = fbt
		resp, err := tr.RoundTrip(newRequest(t, "GET", "/", nil))
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		if got := readBody(t, resp); got != "first second" {
			t.Fatalf("body = %q", got)
		}
	})
	t.Run("slow upload before the head", func(t *testing.T) {
		tr := serveUWSGI(t, "tcp", func(p *packet) {
			b, _ := io.ReadAll(p.body)
			fmt.Fprintf(p.conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		})
		tr.FirstByteTimeout = fbt
		pr, pw := io.Pipe()
		go func() {
			for _, s := range []string{"a", "b", "c"} {
				time.Sleep(fbt) // a client uploading slowly: 3×fbt in total
				pw.Write([]byte(s))
			}
			pw.Close()
		}()
		r := newRequest(t, "POST", "/", nil)
		r.Body, r.ContentLength = pr, 3
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		if got := readBody(t, resp); got != "abc" {
			t.Fatalf("body = %q", got)
		}
	})
}

// Cancelling the request's context aborts the wait and reports the cause.
func TestRoundTrip_ContextCancel(t *testing.T) {
	received, release := make(chan struct{}), make(chan struct{})
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		close(received)
		<-release
	})
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-received
		cancel()
	}()
	r := newRequest(t, "GET", "/", nil).WithContext(ctx)
	_, err := tr.RoundTrip(r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// Closing the response body closes the connection at once, even mid-stream.
func TestRoundTrip_CloseBodyClosesConn(t *testing.T) {
	serverSawClose := make(chan struct{})
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		io.WriteString(p.conn, "HTTP/1.1 200 OK\r\n\r\npartial")
		p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := p.conn.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
			close(serverSawClose)
		}
	})
	resp, err := tr.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "partial" {
		t.Fatalf("read %q, %v", buf, err)
	}
	resp.Body.Close()
	select {
	case <-serverSawClose:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not see the connection close")
	}
}

// Informational replies are skipped; the final reply is returned.
func TestRoundTrip_Skips100Continue(t *testing.T) {
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		io.WriteString(p.conn, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
	})
	resp, err := tr.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	if resp.StatusCode != 201 || readBody(t, resp) != "ok" {
		t.Fatalf("status = %d, want 201", resp.StatusCode)
	}
}

// A 101 reply turns the body into a two-way tunnel (uWSGI's WebSocket handshake).
func TestRoundTrip_SwitchingProtocolsTunnel(t *testing.T) {
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		io.WriteString(p.conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello|")
		line, err := bufio.NewReader(p.conn).ReadString('\n')
		if err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		io.WriteString(p.conn, "echo:"+line)
	})
	r := newRequest(t, "GET", "/ws", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != 101 || !ok {
		t.Fatalf("status %d, body writable %v", resp.StatusCode, ok)
	}
	if _, err := io.WriteString(rw, "ping\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rw)
	if err != nil || string(got) != "hello|echo:ping\n" {
		t.Fatalf("tunnel read %q, %v", got, err)
	}
}

// An upstream streaming endless headers is cut off instead of filling memory.
func TestRoundTrip_HeadSizeLimit(t *testing.T) {
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		io.WriteString(p.conn, "HTTP/1.1 200 OK\r\n")
		line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		for range 2 * headlimit.Max / len(line) {
			if _, err := io.WriteString(p.conn, line); err != nil {
				return // the client gave up, as it should
			}
		}
	})
	_, err := tr.RoundTrip(newRequest(t, "GET", "/", nil))
	if !errors.Is(err, headlimit.ErrTooLarge) {
		t.Fatalf("err = %v, want headlimit.ErrTooLarge", err)
	}
}

// Garbage instead of an HTTP reply is an error naming what came back.
func TestRoundTrip_GarbageReply(t *testing.T) {
	tr := serveUWSGI(t, "tcp", func(p *packet) {
		io.WriteString(p.conn, "\x00\x00\x00\x00binary junk\n")
	})
	_, err := tr.RoundTrip(newRequest(t, "GET", "/", nil))
	if !errors.Is(err, errNotHTTP) || !strings.Contains(err.Error(), "binary junk") {
		t.Fatalf("err = %v, want errNotHTTP quoting the reply", err)
	}
}
