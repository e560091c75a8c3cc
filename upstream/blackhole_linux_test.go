//go:build linux

package upstream

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// blackholeURL is a loopback address whose connects time out: a socket
// listening with backlog 0 that never accepts. Once its accept queue
// holds one connection, Linux drops further SYNs, so a connect hangs
// like one to a dead host, without leaving loopback.
func blackholeURL(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return "http://" + addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue; connect timeouts not testable here")
	return ""
}

// A connect timeout is a 504, and a request that timed out connecting
// never reached the server, so it is retried elsewhere (POST included).
func TestConnectTimeout_504AndRetried(t *testing.T) {
	hole := blackholeURL(t)
	log, logs := observed()
	g := newTestGroup(t, Config{Servers: []Server{{URL: hole}}, ConnectTimeout: 100 * time.Millisecond}, log)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	if st, _ := do(t, front.Client(), "GET", front.URL, ""); st != 504 {
		t.Fatalf("status %d, want 504", st)
	}
	if !hasLog(logs, "upstream request failed", "server", hole) {
		t.Fatalf("no error log naming the server: %v", logs.All())
	}

	good := echoBody(t, "good")
	g2 := newTestGroup(t, Config{Servers: []Server{{URL: hole}, {URL: good.URL}}, ConnectTimeout: 100 * time.Millisecond}, nil)
	f2, _ := newFront(t, g2.Handler(HandlerOptions{Buffering: false}))
	for range 2 { // round robin: one of them starts on the black hole
		if st, body := do(t, f2.Client(), "POST", f2.URL, "hello"); st != 200 || body != "POST hello" {
			t.Fatalf("%d %q, want retried to the good server", st, body)
		}
	}
}
