package edge

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-server/tandem/conf"
)

// freePort asks the kernel for a TCP port that is free right now; a
// wildcard can only cover a specific address on a fixed port.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// As in nginx, `listen :P` in one site and `listen 127.0.0.1:P` in another
// work together: one socket is bound, and a connection to 127.0.0.1 gets
// the specific site while any other local address gets the wildcard's.
func TestListen_WildcardServesSpecificAddress(t *testing.T) {
	for _, wildcard := range []string{":%d", "0.0.0.0:%d"} {
		t.Run(wildcard, func(t *testing.T) {
			port := freePort(t)
			s, _ := newTestServer(t, fmt.Sprintf(`
site specific { listen 127.0.0.1:%d; return 200 "specific"; }
site wild { listen `+wildcard+`; return 200 "wild"; }
`, port, port), nil)
			if err := s.Start(); err != nil {
				t.Fatalf("start: %v", err)
			}
			t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
			if got := s.Addrs(); len(got) != 1 {
				t.Fatalf("bound %v, want one wildcard socket", got)
			}
			client := &http.Client{Timeout: 5 * time.Second}
			// 127.0.0.2 is loopback on Linux but not the specific address.
			for host, want := range map[string]string{"127.0.0.1": "specific", "127.0.0.2": "wild"} {
				resp, err := client.Get("http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
				if err != nil {
					t.Fatalf("GET via %s: %v", host, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != want {
					t.Errorf("via %s: got %q, want %q", host, body, want)
				}
			}
		})
	}
}

// The two bind errors an operator meets first come with what to do.
func TestListenHint(t *testing.T) {
	wrap := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	for _, tc := range []struct {
		addr string
		err  error
		want string
	}{
		{"127.0.0.1:80", wrap(syscall.EACCES), "CAP_NET_BIND_SERVICE"},
		{":443", wrap(syscall.EACCES), "CAP_NET_BIND_SERVICE"},
		{"127.0.0.1:8080", wrap(syscall.EACCES), ""},
		{"127.0.0.1:8080", wrap(syscall.EADDRINUSE), "ss -ltnp"},
		{"127.0.0.1:8080", wrap(syscall.EADDRNOTAVAIL), ""},
	} {
		got := listenHint(tc.addr, tc.err)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("listenHint(%s, %v) = %q, want it to mention %q", tc.addr, tc.err, got, tc.want)
		}
	}
}

// A port already taken fails Start with the hint.
func TestStart_AddressInUseSaysSo(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg, err := conf.Parse("t.conf", []byte("site _ { listen "+taken.Addr().String()+"; return 200; }\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil {
		s.Shutdown(t.Context())
		t.Fatal("Start succeeded on a taken port")
	}
	if !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "ss -ltnp") {
		t.Errorf("error %q: want the cause and the hint", err)
	}
}
