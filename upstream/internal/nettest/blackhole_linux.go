package nettest

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Blackhole returns a loopback HOST:PORT whose connects time out: a
// socket listening with backlog 0 that never accepts. Once its accept
// queue holds one connection, Linux drops further SYNs, so a connect
// hangs like one to a dead host, without leaving loopback. It skips the
// test where the queue cannot be filled.
func Blackhole(tb testing.TB) string {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		tb.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		tb.Cleanup(func() { c.Close() })
	}
	tb.Skip("could not fill the accept queue; connect timeouts not testable here")
	return ""
}
