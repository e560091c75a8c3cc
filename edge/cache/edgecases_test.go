package cache

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// RFC 9111 §4.1: the latest response decides how a key varies; variants
// stored under the old Vary are dropped.
func TestVary_ChangeDropsOldVariants(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, nil)
	vary := "Accept-Language"
	var mu sync.Mutex
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		w.Header().Set("Vary", vary)
		mu.Unlock()
		versioned(&e.hits, 200, "Cache-Control: max-age=60")(w, r)
	})
	e.get("/v", "Accept-Language: en")
	e.get("/v", "Accept-Language: fr")
	mu.Lock()
	vary = "X-Device"
	mu.Unlock()
	e.get("/v", "Accept-Language: de")
	if st := e.c.Stats(); st.Entries != 1 {
		t.Fatalf("entries %d after Vary changed, want 1", st.Entries)
	}
	if res := e.get("/v", "Accept-Language: en"); res.x() != "HIT" || res.body != "v3" {
		t.Fatalf("new Vary ignores Accept-Language: %q %q", res.x(), res.body)
	}
}

// A 304 carrying Set-Cookie answers its client with the cookie but does
// not update the shared entry.
func TestRevalidation_304WithSetCookieNotShared(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"a"`)
		w.Header().Set("Cache-Control", "max-age=10")
		if r.Header.Get("If-None-Match") != "" {
			w.Header().Set("Set-Cookie", "s=1")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "body")
	})
	e.get("/sc")
	e.clk.Advance(11 * time.Second)
	res := e.get("/sc")
	if res.x() != "REVALIDATED" || res.body != "body" || res.header.Get("Set-Cookie") != "s=1" {
		t.Fatalf("revalidated: %q %q %v", res.x(), res.body, res.header)
	}
	// Served from the store without revalidation: no cookie.
	res = e.get("/sc", "Cache-Control: max-stale")
	if res.x() != "STALE" || res.header.Get("Set-Cookie") != "" {
		t.Fatalf("cookie shared with the next client: %v", res.header)
	}
}

// RFC 9111 §5.2.2.3: must-understand with an understood status
// overrides no-store; with another status nothing is stored.
func TestMustUnderstand(t *testing.T) {
	for _, tc := range []struct {
		status int
		wantX  string
	}{{200, "HIT"}, {299, "MISS"}} {
		e := newEnv(t, Options{}, Policy{}, nil)
		e.setHandler(versioned(&e.hits, tc.status, "Cache-Control: max-age=60, must-understand, no-store"))
		e.get("/mu")
		if x := e.get("/mu").x(); x != tc.wantX {
			t.Errorf("status %d: %q, want %q", tc.status, x, tc.wantX)
		}
	}
}

// Event streams are never stored (they would hold coalesced waiters).
func TestEventStream_NotStored(t *testing.T) {
	e := newEnv(t, Options{}, Policy{DefaultTTL: time.Minute}, nil)
	e.setHandler(versioned(&e.hits, 200, "Content-Type: text/event-stream"))
	e.get("/events")
	if x := e.get("/events").x(); x != "MISS" {
		t.Fatalf("event stream stored: %q", x)
	}
}

// When the leading client leaves mid-body, the response is not stored
// and a waiter takes over the fetch.
func TestCoalescing_LeaderClientGone(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if e.hits.Load() == 1 {
			// No Content-Length: only the cancellation tells the cache
			// that the body was cut off.
			_, _ = io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "whole")
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.front.URL+"/gone", nil)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var waiter *result
	wg.Go(func() { waiter, _ = e.try(http.MethodGet, "/gone") })
	waitFor(t, "waiter", func() bool { return e.c.waiting.Load() == 1 })
	cancel()
	resp.Body.Close()
	wg.Wait()
	close(release)
	if waiter == nil || waiter.body != "whole" || waiter.x() != "MISS" {
		t.Fatalf("waiter: %+v", waiter)
	}
	if e.get("/gone").x() != "HIT" {
		t.Fatal("the waiter's fetch was not stored")
	}
}

// Close stops background refreshes and waits for them.
func TestClose_WaitsForBackgroundRefresh(t *testing.T) {
	started := make(chan struct{})
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if e.hits.Load() == 2 {
			close(started)
			<-r.Context().Done() // the refresh hangs until cancelled
			return
		}
		versioned(&e.hits, 200, "Cache-Control: max-age=1, stale-while-revalidate=60")(w, r)
	})
	e.get("/bg")
	e.clk.Advance(2 * time.Second)
	if x := e.get("/bg").x(); x != "STALE" {
		t.Fatalf("%q", x)
	}
	<-started
	done := make(chan struct{})
	go func() { _ = e.c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the background refresh")
	}
	if st := e.c.Stats(); st.Entries != 0 {
		t.Fatalf("entries after Close: %d", st.Entries)
	}
}
