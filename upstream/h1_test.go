package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-server/tandem/upstream/internal/headlimit"
)

// keepAliveServer answers every request on a connection with "conn N"
// (N counts connections) and, after answering, optionally closes the
// connection to play an app server whose keep-alive timeout expired.
func keepAliveServer(t *testing.T, closeAfter bool) (url string, conns *atomic.Int64) {
	conns = new(atomic.Int64)
	url = rawServer(t, func(c net.Conn) {
		id := conns.Add(1)
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			reply := fmt.Sprintf("conn %d %s", id, body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(reply), reply)
			if closeAfter {
				return
			}
		}
	})
	return url, conns
}

func h1For(t *testing.T, url string) *h1Transport {
	t.Helper()
	ep, err := parseServerURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg := withDefaults(Config{Servers: []Server{{URL: url}}, Keepalive: 4})
	tr := newH1Transport(ep, &cfg)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func roundTrip(t *testing.T, tr http.RoundTripper, url, method, body string) string {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url+"/", rd)
	if body != "" {
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Requests in sequence share one kept-alive connection.
func TestH1_ReusesConnection(t *testing.T) {
	url, conns := keepAliveServer(t, false)
	tr := h1For(t, url)
	for i := range 5 {
		if got := roundTrip(t, tr, url, "GET", ""); got != "conn 1 " {
			t.Fatalf("request %d answered %q, want it on connection 1", i, got)
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("%d connections for 5 sequential requests", conns.Load())
	}
}

// A pooled connection the server has closed is not an error: the
// request, body included, goes out again on a fresh connection.
func TestH1_StalePooledConnectionIsRedialled(t *testing.T) {
	url, _ := keepAliveServer(t, true)
	tr := h1For(t, url)
	if got := roundTrip(t, tr, url, "GET", ""); got != "conn 1 " {
		t.Fatalf("first answer %q", got)
	}
	// The server closes after answering; the transport kept the
	// connection (the reply did not say close). Wait for the close to
	// have happened before reusing it.
	waitFor(t, "server to close its side", 2*time.Second, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if len(tr.idle) != 1 {
			return false
		}
		c := tr.idle[0].conn
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := tr.idle[0].br.Peek(1)
		c.SetReadDeadline(time.Time{})
		return err == io.EOF
	})
	if got := roundTrip(t, tr, url, "POST", "payload"); got != "conn 2 payload" {
		t.Fatalf("after a stale connection: %q, want the POST resent on conn 2", got)
	}
}

// A server may answer before reading the whole body (413); the answer is
// returned, not a write error, and the connection is not reused.
func TestH1_EarlyAnswerWhileBodyIsSent(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		readHead(c) // the head only; the body is left unread
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
	})
	tr := h1For(t, url)
	big := strings.Repeat("x", 8<<20) // more than the socket buffers hold
	req, _ := http.NewRequest("POST", url+"/", strings.NewReader(big))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	tr.mu.Lock()
	idle := len(tr.idle)
	tr.mu.Unlock()
	if idle != 0 {
		t.Fatal("a connection with an unsent body was pooled")
	}
}

// 100 Continue is skipped; the final response is returned.
func TestH1_SkipsInformational(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		readHead(c)
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := h1For(t, url)
	if got := roundTrip(t, tr, url, "GET", ""); got != "ok" {
		t.Fatalf("got %q", got)
	}
}

// Cancelling the request ends a wait for the head at once.
func TestH1_CancelEndsWait(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		readHead(c)
		io.Copy(io.Discard, c) // never answers
	})
	tr := h1For(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/", nil)
	done := make(chan error, 1)
	go func() {
		_, err := tr.RoundTrip(req)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil || ctx.Err() == nil {
			t.Fatalf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RoundTrip did not return after cancel")
	}
}

// Upstream connections carry no TCP keep-alive probes (nginx's default):
// setting them up cost four socket options per dial.
func TestH1_NoTCPKeepAlive(t *testing.T) {
	url, _ := keepAliveServer(t, false)
	tr := h1For(t, url)
	roundTrip(t, tr, url, "GET", "")
	tr.mu.Lock()
	if len(tr.idle) != 1 {
		tr.mu.Unlock()
		t.Fatalf("%d pooled connections, want 1", len(tr.idle))
	}
	conn := tr.idle[0].conn
	tr.mu.Unlock()
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		on, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	if on != 0 {
		t.Errorf("SO_KEEPALIVE = %d on an upstream connection, want 0", on)
	}
}

// An upstream that never ends its head is cut off at headlimit.Max: the
// request fails (502 upstream) instead of buffering headers without end.
func TestH1_ResponseHeadLimit(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for range 2 * headlimit.Max / len(line) {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	tr := h1For(t, url)
	req, _ := http.NewRequest("GET", url+"/", nil)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, headlimit.ErrTooLarge) {
		t.Fatalf("err = %v, want headlimit.ErrTooLarge", err)
	}
	// A normal head on the next connection is read in full.
	url2, _ := keepAliveServer(t, false)
	if got := roundTrip(t, h1For(t, url2), url2, "GET", ""); got != "conn 1 " {
		t.Fatalf("after the limit: %q", got)
	}
}
