package cache

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// Concurrent misses for one key make exactly one upstream request; the
// others wait and are served what it stored.
func TestCoalescing_ColdKeyOneUpstreamRequest(t *testing.T) {
	const n = 200
	release := make(chan struct{})
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		<-release
		versioned(&e.hits, 200, "Cache-Control: max-age=60")(w, r)
	})
	var wg sync.WaitGroup
	results := make(chan *result, n)
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := e.try(http.MethodGet, "/cold")
			if err != nil {
				errs <- err
				return
			}
			results <- res
		})
	}
	// Hold the origin until every other request is waiting on the leader.
	waitFor(t, "all requests to wait", func() bool { return e.c.waiting.Load() == n-1 })
	close(release)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := e.hits.Load(); got != 1 {
		t.Fatalf("origin requests %d, want 1", got)
	}
	count := map[string]int{}
	for res := range results {
		if res.status != 200 || res.body != "v1" {
			t.Fatalf("response %d %q", res.status, res.body)
		}
		count[res.x()]++
	}
	if count["MISS"] != 1 || count["HIT"] != n-1 {
		t.Fatalf("X-Cache counts %v, want 1 MISS and %d HIT", count, n-1)
	}
}

// When the coalesced response cannot be stored, waiters are released as
// soon as its head arrives and go upstream themselves; later requests
// skip coalescing for PassTTL.
func TestCoalescing_UnstorableReleasesWaiters(t *testing.T) {
	const n = 10
	release := make(chan struct{})
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if e.hits.Load() == 1 {
			w.Header().Set("Cache-Control", "private")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-release // the leader's body never ends while the others run
			return
		}
		w.Header().Set("Cache-Control", "private")
		w.WriteHeader(200)
	})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = e.try(http.MethodGet, "/priv") })
	waitFor(t, "leader upstream", func() bool { return e.hits.Load() == 1 })
	start := time.Now()
	for range n - 1 {
		wg.Go(func() {
			if res, err := e.try(http.MethodGet, "/priv"); err != nil || res.status != 200 {
				t.Errorf("waiter: %v", err)
			}
		})
	}
	waitFor(t, "waiters upstream", func() bool { return e.hits.Load() == n })
	if time.Since(start) > 2*time.Second {
		t.Fatalf("waiters were held %v", time.Since(start))
	}
	close(release)
	wg.Wait()
	if !e.c.passing(primaryOf(e, "/priv")) {
		t.Fatal("key not marked pass")
	}
}

// primaryOf is the default key of path on the front server.
func primaryOf(e *env, path string) string {
	tpl, _ := compileKey(DefaultKey)
	r, _ := http.NewRequest(http.MethodGet, e.front.URL+path, nil)
	return string(tpl.append(nil, r))
}

// A request waits at most LockTimeout for another's fetch, then goes
// upstream itself.
func TestCoalescing_LockTimeout(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, Options{LockTimeout: 50 * time.Millisecond}, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if e.hits.Load() == 1 {
			<-release
		}
		versioned(&e.hits, 200, "Cache-Control: max-age=60")(w, r)
	})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = e.try(http.MethodGet, "/slow") })
	waitFor(t, "leader upstream", func() bool { return e.hits.Load() == 1 })
	res := e.get("/slow")
	if res.x() != "MISS" || res.body != "v2" {
		t.Fatalf("after lock timeout: %q %q", res.x(), res.body)
	}
	close(release)
	wg.Wait()
}
