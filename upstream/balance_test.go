package upstream

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// viaRec sends one GET through h from remote with extra headers and
// returns the server that answered.
func viaRec(t *testing.T, h *Handler, remote string, hdr map[string]string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
	r.RemoteAddr = remote
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec, st := serveRec(h, r)
	if st != 0 || rec.Code != http.StatusOK {
		t.Fatalf("status %d / %d", st, rec.Code)
	}
	return rec.Header().Get("X-Server")
}

// Smooth weighted round robin spreads a heavy server's turns instead of
// bursting them: weights 5,1,1 give nginx's a a b a c a a.
func TestRoundRobin_SmoothWeighted(t *testing.T) {
	ts := servers(t, 3)
	srv := urls(ts...)
	srv[0].Weight = 5
	g := newTestGroup(t, Config{Servers: srv}, nil)
	h := g.Handler(HandlerOptions{})
	var seq []string
	for range 14 {
		seq = append(seq, viaRec(t, h, "192.0.2.1:1000", nil))
	}
	want := "s0 s0 s1 s0 s2 s0 s0 s0 s0 s1 s0 s2 s0 s0"
	if got := strings.Join(seq, " "); got != want {
		t.Fatalf("sequence\n got %s\nwant %s", got, want)
	}
}

// Weights set exact shares over a full cycle, through real loopback hops.
func TestRoundRobin_Distribution(t *testing.T) {
	ts := servers(t, 2)
	srv := urls(ts...)
	srv[0].Weight = 3
	g := newTestGroup(t, Config{Servers: srv}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	c := front.Client()
	for range 40 {
		if st, _, _ := get(t, c, front.URL, nil); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if a, b := ts[0].hits.Load(), ts[1].hits.Load(); a != 30 || b != 10 {
		t.Fatalf("hits %d/%d, want 30/10", a, b)
	}
}

// holdServers start backends whose /hold requests block until release
// is called; / answers at once.
func holdServers(t *testing.T, n int) ([]*testServer, func()) {
	ch := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	out := make([]*testServer, n)
	for i := range out {
		name := fmt.Sprintf("s%d", i)
		out[i] = newTestServer(t, name, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				<-ch
			}
			w.Write([]byte(name))
		})
	}
	// Registered after the servers, so it runs before their Close, which
	// waits for held requests.
	t.Cleanup(release)
	return out, release
}

// startHeld sends a /hold request through front and waits until a
// server counts it active.
func startHeld(t *testing.T, g *Group, frontURL string, c *http.Client, wg *sync.WaitGroup) {
	t.Helper()
	// Earlier requests may still count for a moment; start from zero.
	waitFor(t, "no request active", testWait, func() bool { return totalActive(g) == 0 })
	before := int64(0)
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := c.Get(frontURL + "/hold")
		if err == nil {
			io.Copy(io.Discard, resp.Body) // until released
			resp.Body.Close()
		}
	}()
	waitFor(t, "held request active", testWait, func() bool { return totalActive(g) == before+1 })
}

// getWhenSettled waits until exactly want requests are active (the
// proxy closes a response body just after the client has read it, so a
// finished request can still count for a moment), then GETs url.
func getWhenSettled(t *testing.T, g *Group, c *http.Client, url string, want int64) string {
	t.Helper()
	waitFor(t, "active count to settle", testWait, func() bool { return totalActive(g) == want })
	_, s, _ := get(t, c, url, nil)
	return s
}

func totalActive(g *Group) int64 {
	var n int64
	for _, s := range g.Status().Servers {
		n += s.Active
	}
	return n
}

func activeOn(g *Group) map[string]int64 {
	m := map[string]int64{}
	for _, s := range g.Status().Servers {
		m[s.URL] = s.Active
	}
	return m
}

// least_conn sends new requests to the server with fewer in flight; with
// equal counts it goes round robin.
func TestLeastConn_PrefersIdleAndTiesRoundRobin(t *testing.T) {
	ts, release := holdServers(t, 2)
	defer release() // before the front's Close, which waits for held requests
	g := newTestGroup(t, Config{Servers: urls(ts...), Balance: BalanceLeastConn}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	c := front.Client()

	// Idle group: ties, so round robin alternates.
	var seq []string
	for range 6 {
		seq = append(seq, getWhenSettled(t, g, c, front.URL, 0))
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			t.Fatalf("ties not round robin: %v", seq)
		}
	}

	var wg sync.WaitGroup
	startHeld(t, g, front.URL, c, &wg)
	busy := ""
	for u, n := range activeOn(g) {
		if n == 1 {
			busy = u
		}
	}
	for range 10 {
		s := getWhenSettled(t, g, c, front.URL, 1)
		if ts[0].URL == busy && s == "s0" || ts[1].URL == busy && s == "s1" {
			t.Fatalf("request went to the busy server %s", busy)
		}
	}
	release()
	wg.Wait()
}

// random_two compares two random servers and takes the less busy, so a
// loaded server of two gets nothing new; unloaded, the spread is even.
func TestRandomTwo_AvoidsBusyAndSpreads(t *testing.T) {
	ts, release := holdServers(t, 3)
	defer release() // before the front's Close, which waits for held requests
	g := newTestGroup(t, Config{Servers: urls(ts...), Balance: BalanceRandomTwo}, nil)
	h := g.Handler(HandlerOptions{})
	counts := map[string]int{}
	for range 600 {
		counts[viaRec(t, h, "192.0.2.1:1", nil)]++
	}
	for _, name := range []string{"s0", "s1", "s2"} {
		if counts[name] < 120 {
			t.Fatalf("uneven spread %v", counts)
		}
	}

	// Two servers, one holding a request: every draw is {busy, idle}.
	g2 := newTestGroup(t, Config{Servers: urls(ts[0], ts[1]), Balance: BalanceRandomTwo}, nil)
	front, _ := newFront(t, g2.Handler(HandlerOptions{}))
	c := front.Client()
	var wg sync.WaitGroup
	startHeld(t, g2, front.URL, c, &wg)
	idle := "s0"
	if activeOn(g2)[ts[0].URL] == 1 {
		idle = "s1"
	}
	for range 20 {
		if _, s, _ := get(t, c, front.URL, nil); s != idle {
			t.Fatalf("went to busy server %s", s)
		}
	}
	release()
	wg.Wait()
}

// ip_hash keeps a client on one server and spreads clients evenly.
func TestIPHash_StickyAndSpread(t *testing.T) {
	ts := servers(t, 3)
	g := newTestGroup(t, Config{Servers: urls(ts...), Balance: BalanceIPHash}, nil)
	h := g.Handler(HandlerOptions{})
	counts := map[string]int{}
	for i := range 300 {
		remote := fmt.Sprintf("10.0.%d.%d:4000", i/250, i%250+1)
		first := viaRec(t, h, remote, nil)
		counts[first]++
		for range 3 {
			r2 := strings.Replace(remote, ":4000", ":5000", 1) // another connection, same IP
			if s := viaRec(t, h, r2, nil); s != first {
				t.Fatalf("client %s moved from %s to %s", remote, first, s)
			}
		}
	}
	for _, name := range []string{"s0", "s1", "s2"} {
		if counts[name] < 60 {
			t.Fatalf("uneven spread %v", counts)
		}
	}
}

// Behind a trusted proxy the client IP comes from X-Forwarded-For; from
// an untrusted peer the header is ignored.
func TestIPHash_TrustedProxyResolvesClient(t *testing.T) {
	ts := servers(t, 3)
	g := newTestGroup(t, Config{Servers: urls(ts...), Balance: BalanceIPHash}, nil)
	trusted := g.Handler(HandlerOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	untrusted := g.Handler(HandlerOptions{})
	seen := map[string]bool{}
	for i := range 60 {
		ip := fmt.Sprintf("198.51.100.%d", i+1)
		direct := viaRec(t, untrusted, ip+":1", nil)
		// The proxy chain: client, then our trusted proxy 127.0.0.2.
		via := viaRec(t, trusted, "127.0.0.1:1", map[string]string{"X-Forwarded-For": ip + ", 127.0.0.2"})
		if via != direct {
			t.Fatalf("client %s: direct %s, via trusted proxy %s", ip, direct, via)
		}
		seen[viaRec(t, untrusted, "127.0.0.1:1", map[string]string{"X-Forwarded-For": ip})] = true
	}
	if len(seen) != 1 {
		t.Fatalf("untrusted X-Forwarded-For moved the client: %v", seen)
	}
}

// header and cookie hashing: same value, same server; values spread;
// no value means round robin.
func TestKeyHash_HeaderAndCookie(t *testing.T) {
	ts := servers(t, 3)
	for _, tc := range []struct {
		balance string
		set     func(map[string]string, string)
	}{
		{BalanceHeader, func(m map[string]string, v string) { m["X-User"] = v }},
		{BalanceCookie, func(m map[string]string, v string) { m["Cookie"] = "theme=dark; sid=" + v }},
	} {
		t.Run(tc.balance, func(t *testing.T) {
			key := "X-User"
			if tc.balance == BalanceCookie {
				key = "sid"
			}
			g := newTestGroup(t, Config{Servers: urls(ts...), Balance: tc.balance, BalanceKey: key}, nil)
			h := g.Handler(HandlerOptions{})
			counts := map[string]int{}
			for i := range 300 {
				hdr := map[string]string{}
				tc.set(hdr, fmt.Sprintf("user-%d", i))
				first := viaRec(t, h, "192.0.2.1:1", hdr)
				counts[first]++
				if again := viaRec(t, h, "192.0.2.9:1", hdr); again != first {
					t.Fatalf("key user-%d moved %s -> %s", i, first, again)
				}
			}
			for _, name := range []string{"s0", "s1", "s2"} {
				if counts[name] < 60 {
					t.Fatalf("uneven spread %v", counts)
				}
			}
			// Absent key: round robin cycles through all three.
			var seq []string
			for range 3 {
				seq = append(seq, viaRec(t, h, "192.0.2.1:1", nil))
			}
			if seq[0] == seq[1] || seq[1] == seq[2] || seq[0] == seq[2] {
				t.Fatalf("no key did not round robin: %v", seq)
			}
		})
	}
}

// Consistent hashing: when a server goes down only its keys move; the
// others' keys stay put, and the moved ones are retried elsewhere.
func TestKeyHash_ServerLossMovesOnlyItsKeys(t *testing.T) {
	ts := servers(t, 3)
	g := newTestGroup(t, Config{Servers: urls(ts...), Balance: BalanceHeader, BalanceKey: "X-User", MaxFails: 1}, nil)
	h := g.Handler(HandlerOptions{})
	before := map[int]string{}
	for i := range 150 {
		before[i] = viaRec(t, h, "192.0.2.1:1", map[string]string{"X-User": fmt.Sprint(i)})
	}
	ts[2].Close() // s2 now refuses connections
	for i := range 150 {
		now := viaRec(t, h, "192.0.2.1:1", map[string]string{"X-User": fmt.Sprint(i)})
		if before[i] != "s2" && now != before[i] {
			t.Fatalf("key %d moved %s -> %s though its server is up", i, before[i], now)
		}
		if now == "s2" {
			t.Fatalf("key %d still on the closed server", i)
		}
	}
}

// Backups get nothing while a primary is up, everything when none is.
func TestBackup_OnlyWhenNoPrimaryUp(t *testing.T) {
	ts := servers(t, 3)
	srv := urls(ts...)
	srv[2].Backup = true
	g := newTestGroup(t, Config{Servers: srv, MaxFails: 1, FailTimeout: 1 << 40}, nil)
	h := g.Handler(HandlerOptions{})
	for range 10 {
		viaRec(t, h, "192.0.2.1:1", nil)
	}
	if n := ts[2].hits.Load(); n != 0 {
		t.Fatalf("backup got %d requests while primaries were up", n)
	}
	ts[0].Close()
	for range 10 {
		if s := viaRec(t, h, "192.0.2.1:1", nil); s != "s1" {
			t.Fatalf("with one primary up, got %s", s)
		}
	}
	if n := ts[2].hits.Load(); n != 0 {
		t.Fatalf("backup got %d requests while a primary was up", n)
	}
	ts[1].Close()
	for range 10 {
		if s := viaRec(t, h, "192.0.2.1:1", nil); s != "s2" {
			t.Fatalf("with no primary up, got %s", s)
		}
	}
}
