package sockdial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-server/tandem/upstream/internal/nettest"
)

// echoOnce accepts one connection on ln, echoes what it reads until EOF,
// then closes it.
func echoOnce(t *testing.T, ln net.Listener) {
	t.Helper()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
}

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestDial_UnixAndTCP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	_, port, _ := net.SplitHostPort(tl.Addr().String())

	for _, tc := range []struct {
		name, network, addr string
		ln                  net.Listener
		raw                 bool
	}{
		{"unix", "unix", sock, ul, true},
		{"tcp literal", "tcp", tl.Addr().String(), tl, true},
		{"tcp host name", "tcp", net.JoinHostPort("localhost", port), tl, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(tc.network, tc.addr, time.Second)
			if (d.raw != nil) != tc.raw {
				t.Fatalf("raw dial = %v, want %v", d.raw != nil, tc.raw)
			}
			echoOnce(t, tc.ln)
			c, err := d.Dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c)
			if got := c.RemoteAddr().String(); tc.raw && got != tc.addr {
				t.Fatalf("RemoteAddr %q, want %q", got, tc.addr)
			}
			if tc.network == "tcp" {
				if la, ok := c.LocalAddr().(*net.TCPAddr); !ok || la.Port == 0 {
					t.Fatalf("LocalAddr %v", c.LocalAddr())
				}
			}
			// The peer's close reads as io.EOF, as from net.
			if cw, ok := c.(interface {
				SyscallConn() (syscall.RawConn, error)
			}); ok {
				rc, _ := cw.SyscallConn()
				rc.Control(func(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_WR) })
			}
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("read after the peer closed: %d, %v; want io.EOF", n, err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after Close: %v, want net.ErrClosed", err)
			}
			var op *net.OpError
			if _, err := c.Write([]byte("x")); !errors.As(err, &op) || op.Op != "write" {
				t.Fatalf("write after Close: %#v, want a *net.OpError", err)
			}
		})
	}
}

func TestDial_RefusedIsADialError(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := tl.Addr().String()
	tl.Close()
	for _, tc := range []struct{ network, addr string }{
		{"unix", filepath.Join(t.TempDir(), "missing.sock")},
		{"tcp", closedPort},
	} {
		_, err := New(tc.network, tc.addr, time.Second).Dial(context.Background())
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || op.Timeout() {
			t.Fatalf("%s %s: %v, want a dial error that is not a timeout", tc.network, tc.addr, err)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("%s: %v, want ECONNREFUSED or ENOENT", tc.network, err)
		}
	}
}

func TestDial_TimeoutAndCancel(t *testing.T) {
	addr := nettest.Blackhole(t)
	d := New("tcp", addr, 150*time.Millisecond)
	start := time.Now()
	_, err := d.Dial(context.Background())
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !op.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%v, want a dial timeout", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 5*time.Second {
		t.Fatalf("timed out after %v, want about 150ms", el)
	}

	// A cancelled context ends a pending connect long before its timeout.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	_, err = New("tcp", addr, time.Minute).Dial(ctx)
	if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want a dial error wrapping context.Canceled", err)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Fatalf("cancel took %v", el)
	}
	if _, err := New("tcp", addr, time.Minute).Dial(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with a done context: %v", err)
	}
}

// A read deadline is a net.Error timeout, as on a net.Conn.
func TestConn_ReadDeadlineIsATimeout(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		c, err := tl.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // never answers
		}
	}()
	c, err := New("tcp", tl.Addr().String(), time.Second).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%v, want a timeout", err)
	}
}

// Loopback TCP connects usually finish before the socket joins the
// poller; each must still be seen as connected, not wait for a
// readiness that was reported before the wait began.
func TestDial_ManyLoopbackConnects(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// Several at once, so other goroutines' polling runs between a
	// socket joining the poller and its wait.
	d := New("tcp", tl.Addr().String(), 2*time.Second)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for i := range 150 {
				c, err := d.Dial(context.Background())
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				c.Close()
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestDial_IPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	d := New("tcp", ln.Addr().String(), time.Second)
	if d.raw == nil {
		t.Fatal("an IPv6 literal should be dialed directly")
	}
	echoOnce(t, ln)
	c, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
	if la, ok := c.LocalAddr().(*net.TCPAddr); !ok || !la.IP.Equal(net.IPv6loopback) {
		t.Fatalf("LocalAddr %v, want [::1]:port", c.LocalAddr())
	}
}
