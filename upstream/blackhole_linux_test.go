//go:build linux

package upstream

import (
	"testing"
	"time"

	"github.com/tandem-server/tandem/upstream/internal/nettest"
)

// blackholeURL is a server URL whose connects time out.
func blackholeURL(t *testing.T) string {
	return "http://" + nettest.Blackhole(t)
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
