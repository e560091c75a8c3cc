package upstream

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// flakyServer answers 500 (or 503 on the health path) while bad is set.
func flakyServer(t *testing.T, name string, bad *atomic.Bool, healthHits, healthBad *atomic.Int64) *testServer {
	return newTestServer(t, name, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if healthHits != nil {
				healthHits.Add(1)
			}
			if bad.Load() {
				if healthBad != nil {
					healthBad.Add(1)
				}
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		if bad.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
		w.Write([]byte(name))
	})
}

func recGet(h *Handler) (int, string) {
	r := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
	rec, st := serveRec(h, r)
	if st != 0 {
		return st, ""
	}
	return rec.Code, rec.Header().Get("X-Server")
}

// Passive health: max_fails failures within fail_timeout take a server
// out for fail_timeout; then one request probes it. A failed probe keeps
// it out; a good one brings it back. Both transitions are logged.
func TestPassive_MarksDownProbesAndRecovers(t *testing.T) {
	var bad atomic.Bool
	s0 := flakyServer(t, "s0", &bad, nil, nil)
	s1 := newTestServer(t, "s1", nil)
	log, logs := observed()
	g := newTestGroup(t, Config{
		Servers: urls(s0, s1), MaxFails: 2, FailTimeout: 400 * time.Millisecond, FailStatus: []int{500},
	}, log)
	h := g.Handler(HandlerOptions{})

	bad.Store(true)
	for s0.hits.Load() < 2 {
		recGet(h)
	}
	if serverStatus(t, g, s0.URL).Up {
		t.Fatal("s0 still up after 2 failures")
	}
	if !hasLog(logs, "upstream server down", "server", s0.URL) || !hasLog(logs, "upstream server down", "cause", "status 500") {
		t.Fatalf("no down log with server and cause: %v", logs.All())
	}
	// While down, s0 gets nothing. Only requests that finished before
	// fail_timeout ran out are judged, so a slow machine cannot fail this.
	downUntil := serverStatus(t, g, s0.URL).DownUntil
	judged := 0
	for range 10 {
		_, s := recGet(h)
		if time.Now().Before(downUntil) {
			judged++
			if s != "s1" {
				t.Fatalf("down server got a request (%s)", s)
			}
		}
	}
	if judged == 0 {
		t.Fatal("fail_timeout ran out before any request; machine too slow to judge")
	}

	// fail_timeout passes while s0 is still bad: one probe, which fails.
	waitFor(t, "s0 eligible after fail_timeout", testWait, func() bool { return serverStatus(t, g, s0.URL).Up })
	hits := s0.hits.Load()
	for s0.hits.Load() == hits {
		recGet(h)
	}
	g.mu.Lock()
	stillDown := g.backends[0].passiveDown
	g.mu.Unlock()
	if !stillDown {
		t.Fatal("failed probe did not keep s0 down")
	}

	// Healthy again: after fail_timeout the probe succeeds and s0 is back.
	bad.Store(false)
	waitFor(t, "s0 eligible again", testWait, func() bool { return serverStatus(t, g, s0.URL).Up })
	hits = s0.hits.Load()
	for s0.hits.Load() == hits {
		if st, _ := recGet(h); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if !hasLog(logs, "upstream server up", "server", s0.URL) {
		t.Fatal("no up log")
	}
	if st := serverStatus(t, g, s0.URL); !st.Up || st.Fails != 0 {
		t.Fatalf("after recovery: %+v", st)
	}
}

// Failures further apart than fail_timeout do not add up.
func TestPassive_FailuresCountPerWindow(t *testing.T) {
	s0 := newTestServer(t, "s0", nil)
	g := newTestGroup(t, Config{Servers: urls(s0), MaxFails: 2, FailTimeout: 50 * time.Millisecond}, nil)
	b := g.backends[0]
	g.recordFailure(b, "test")
	if st := serverStatus(t, g, s0.URL); st.Fails != 1 || !st.Up {
		t.Fatalf("after one failure: %+v", st)
	}
	waitFor(t, "window to expire", testWait, func() bool { return serverStatus(t, g, s0.URL).Fails == 0 })
	g.recordFailure(b, "test")
	if !serverStatus(t, g, s0.URL).Up {
		t.Fatal("failures from two windows marked the server down")
	}
	g.recordFailure(b, "test")
	if serverStatus(t, g, s0.URL).Up {
		t.Fatal("two failures in one window did not mark it down")
	}
}

// max_fails 0 turns passive marking off.
func TestPassive_MaxFailsZeroNeverMarks(t *testing.T) {
	s0 := newTestServer(t, "s0", nil)
	g := newTestGroup(t, Config{Servers: urls(s0)}, nil)
	for range 5 {
		g.recordFailure(g.backends[0], "test")
	}
	if !serverStatus(t, g, s0.URL).Up {
		t.Fatal("marked down with max_fails 0")
	}
}

// With every server down, the one that failed longest ago is still tried
// rather than failing the request outright.
func TestAllDown_TriesLongestFailed(t *testing.T) {
	var bad0, bad1 atomic.Bool
	s0 := flakyServer(t, "s0", &bad0, nil, nil)
	s1 := flakyServer(t, "s1", &bad1, nil, nil)
	g := newTestGroup(t, Config{Servers: urls(s0, s1), MaxFails: 1, FailTimeout: time.Hour, FailStatus: []int{500}}, nil)
	h := g.Handler(HandlerOptions{})
	bad0.Store(true)
	bad1.Store(true)
	if _, s := recGet(h); s != "s0" {
		t.Fatalf("first request on %s", s)
	}
	if _, s := recGet(h); s != "s1" {
		t.Fatalf("second request on %s", s)
	}
	if serverStatus(t, g, s0.URL).Up || serverStatus(t, g, s1.URL).Up {
		t.Fatal("servers not down")
	}
	bad0.Store(false)
	if st, s := recGet(h); st != 200 || s != "s0" {
		t.Fatalf("all down: got %d from %q, want 200 from s0 (failed longest ago)", st, s)
	}
	if !serverStatus(t, g, s0.URL).Up || serverStatus(t, g, s1.URL).Up {
		t.Fatal("success did not bring s0 back, or s1 came back without one")
	}
}

// Active checks: fails consecutive failures mark a server down, passes
// consecutive passes mark it up, and traffic follows.
func TestActive_FlipsWithChecks(t *testing.T) {
	var bad atomic.Bool
	var healthHits, healthBad atomic.Int64
	s0 := flakyServer(t, "s0", &bad, &healthHits, &healthBad)
	s1 := newTestServer(t, "s1", nil)
	log, logs := observed()
	g := newTestGroup(t, Config{
		Servers: urls(s0, s1),
		Health:  &HealthConfig{URI: "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second, Passes: 2, Fails: 2},
	}, log)
	h := g.Handler(HandlerOptions{})
	if st := serverStatus(t, g, s0.URL); !st.Up || st.Health != "up" {
		t.Fatalf("servers must start up: %+v", st)
	}
	waitFor(t, "first health checks", testWait, func() bool { return healthHits.Load() >= 2 })

	bad.Store(true)
	waitFor(t, "s0 down", testWait, func() bool { return serverStatus(t, g, s0.URL).Health == "down" })
	if n := healthBad.Load(); n < 2 {
		t.Fatalf("down after %d failed checks, want 2", n)
	}
	// The checker logs just after flipping the state.
	waitFor(t, "down log with cause", testWait, func() bool { return hasLog(logs, "upstream server down", "cause", "status 503") })
	for range 10 {
		if _, s := recGet(h); s != "s1" {
			t.Fatalf("down server answered")
		}
	}

	bad.Store(false)
	passesFrom := healthHits.Load() - healthBad.Load()
	waitFor(t, "s0 up", testWait, func() bool { return serverStatus(t, g, s0.URL).Health == "up" })
	if n := healthHits.Load() - healthBad.Load() - passesFrom; n < 2 {
		t.Fatalf("up after %d passing checks, want 2", n)
	}
	waitFor(t, "up log", testWait, func() bool { return hasLog(logs, "upstream server up", "server", s0.URL) })
}

// The consecutive counting itself, step by step.
func TestActive_ConsecutiveCounts(t *testing.T) {
	s0 := newTestServer(t, "s0", nil)
	g := newTestGroup(t, Config{Servers: urls(s0)}, nil)
	g.cfg.Health = &HealthConfig{Passes: 2, Fails: 2} // no checker goroutine: driven by hand
	b := g.backends[0]
	fail := errors.New("health check: status 500, want 200")
	steps := []struct {
		err  error
		down bool
	}{
		{fail, false}, {nil, false}, {fail, false}, {fail, true}, // a pass in between resets the count
		{nil, true}, {fail, true}, {nil, true}, {nil, false},
	}
	for i, s := range steps {
		g.recordCheck(b, s.err)
		if got := serverStatus(t, g, s0.URL).Health == "down"; got != s.down {
			t.Fatalf("step %d: down=%v, want %v", i, got, s.down)
		}
	}
}

// Close stops the checker: no check starts after it returns.
func TestActive_CloseStopsChecks(t *testing.T) {
	var healthHits atomic.Int64
	var bad atomic.Bool
	s0 := flakyServer(t, "s0", &bad, &healthHits, nil)
	g, err := NewGroup(Config{Servers: urls(s0), Health: &HealthConfig{URI: "/healthz", Interval: 5 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "checks", testWait, func() bool { return healthHits.Load() >= 3 })
	g.Close()
	n := healthHits.Load()
	// Close cancels a check in flight and waits for its goroutine, but a
	// request already written reaches the server after that (its handler
	// runs on the server's own time): at most that one, never a new round.
	for range 3 {
		recGet(g.Handler(HandlerOptions{}))
	}
	if got := healthHits.Load(); got > n+1 {
		t.Fatalf("%d checks after Close; at most the one already sent may arrive", got-n)
	}
	g.Close() // twice is fine
}
