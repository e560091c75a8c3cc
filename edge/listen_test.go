package edge

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
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
