package edge

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge/cache"
	"github.com/tandem-server/tandem/static"
)

// countingUpstream is an httptest upstream that counts requests and
// answers each with h.
func countingUpstream(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// cacheDo sends one request and returns the response with its body.
func cacheDo(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	resp, body := rawDo(t, method, url, hdr)
	return resp, string(body)
}

// The rule `cache 1m;` in front of a proxy: the second GET is a hit, the
// upstream saw one request, and the hit carries X-Cache and Age.
func TestCache_ProxyHit(t *testing.T) {
	up, n := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "page %s", r.URL.Path)
	})
	addr := startEdge(t, `site _ {
    listen 127.0.0.1:0;
    location / { cache 1m; proxy http://`+up.Listener.Addr().String()+`; }
}`, nil)
	url := "http://" + addr + "/a"
	resp, body := cacheDo(t, "GET", url, nil)
	if resp.StatusCode != 200 || body != "page /a" || resp.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("first GET: %d %q X-Cache %q, want 200 MISS", resp.StatusCode, body, resp.Header.Get("X-Cache"))
	}
	resp, body = cacheDo(t, "GET", url, nil)
	if resp.StatusCode != 200 || body != "page /a" || resp.Header.Get("X-Cache") != "HIT" || resp.Header.Get("Age") == "" {
		t.Fatalf("second GET: %d %q X-Cache %q Age %q, want 200 HIT with Age", resp.StatusCode, body, resp.Header.Get("X-Cache"), resp.Header.Get("Age"))
	}
	if !strings.HasPrefix(resp.Header.Get("Cache-Status"), "tandem; hit") {
		t.Errorf("Cache-Status %q, want tandem; hit...", resp.Header.Get("Cache-Status"))
	}
	if got := n.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1", got)
	}
	if resp, _ := cacheDo(t, "HEAD", url, nil); resp.Header.Get("X-Cache") != "HIT" {
		t.Errorf("HEAD after GET: X-Cache %q, want HIT (they share entries)", resp.Header.Get("X-Cache"))
	}
}

// Cache-Control: private is one user's: never stored, every GET goes up.
func TestCache_PrivateNotStored(t *testing.T) {
	up, n := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private")
		fmt.Fprint(w, "yours")
	})
	addr := startEdge(t, `site _ {
    listen 127.0.0.1:0;
    location / { cache 1m; proxy http://`+up.Listener.Addr().String()+`; }
}`, nil)
	for i := range 2 {
		resp, body := cacheDo(t, "GET", "http://"+addr+"/me", nil)
		if body != "yours" || resp.Header.Get("X-Cache") != "MISS" {
			t.Errorf("GET %d: %q X-Cache %q, want MISS", i, body, resp.Header.Get("X-Cache"))
		}
	}
	if got := n.Load(); got != 2 {
		t.Errorf("upstream saw %d requests, want 2", got)
	}
}

// PURGE from loopback removes the URL before location matching; the next
// GET is a miss. Without caching in the config, PURGE is the upstream's.
func TestCache_PurgeFromLoopback(t *testing.T) {
	up, n := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	})
	addr := startEdge(t, `site _ {
    listen 127.0.0.1:0;
    location / { cache 1m; proxy http://`+up.Listener.Addr().String()+`; }
    location = /_tandem/purge { cache_purge; }
}`, nil)
	url := "http://" + addr + "/post/7"
	cacheDo(t, "GET", url, nil)
	if resp, _ := cacheDo(t, "GET", url, nil); resp.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("second GET: X-Cache %q, want HIT", resp.Header.Get("X-Cache"))
	}
	resp, body := cacheDo(t, "PURGE", url, nil)
	if resp.StatusCode != 200 || body != "{\"purged\":1}\n" {
		t.Fatalf("PURGE: %d %q, want 200 {\"purged\":1}", resp.StatusCode, body)
	}
	if resp, _ := cacheDo(t, "GET", url, nil); resp.Header.Get("X-Cache") != "MISS" {
		t.Errorf("GET after PURGE: X-Cache %q, want MISS", resp.Header.Get("X-Cache"))
	}
	if got := n.Load(); got != 2 {
		t.Errorf("upstream saw %d requests, want 2 (PURGE is not forwarded)", got)
	}
	// the POST form on its own location: by URL
	resp, body = cacheDo(t, "POST", "http://"+addr+"/_tandem/purge?url=/post/7", nil)
	if resp.StatusCode != 200 || body != "{\"purged\":1}\n" {
		t.Errorf("POST purge: %d %q, want 200 {\"purged\":1}", resp.StatusCode, body)
	}

	plain := startEdge(t, `site _ {
    listen 127.0.0.1:0;
    location / { proxy http://`+up.Listener.Addr().String()+`; }
}`, nil)
	if _, body := cacheDo(t, "PURGE", "http://"+plain+"/x", nil); body != "PURGE /x" {
		t.Errorf("PURGE without caching: %q, want the upstream's answer", body)
	}
}

// Cache outside compression: a gzip client and an identity client each
// get a correct body, from separate variants, and each variant is a hit
// the second time.
func TestCache_CompressedVariants(t *testing.T) {
	payload := page(8 << 10)
	up, n := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, payload)
	})
	addr := startEdge(t, `site _ {
    listen 127.0.0.1:0;
    compress gzip;
    location / { cache 1m; proxy http://`+up.Listener.Addr().String()+`; }
}`, nil)
	url := "http://" + addr + "/page"
	for round, want := range []string{"MISS", "HIT"} {
		for _, enc := range []string{"gzip", ""} {
			hdr := map[string]string{}
			if enc != "" {
				hdr["Accept-Encoding"] = enc
			}
			resp, raw := rawDo(t, "GET", url, hdr)
			if resp.Header.Get("Content-Encoding") != enc || resp.Header.Get("X-Cache") != want {
				t.Fatalf("round %d, %q client: Content-Encoding %q X-Cache %q, want %q %s", round, enc, resp.Header.Get("Content-Encoding"), resp.Header.Get("X-Cache"), enc, want)
			}
			if got := decodeBody(t, enc, raw); got != payload {
				t.Errorf("round %d, %q client: decoded %d bytes, want %d", round, enc, len(got), len(payload))
			}
		}
	}
	if got := n.Load(); got != 2 {
		t.Errorf("upstream saw %d requests, want 2 (one per variant)", got)
	}
}

// An upstream that stops answering: the proxy's 502, which the edge
// writes inside a caching location, lets stale-if-error serve the stored
// page. The location's error_page is not consulted while a stale entry
// can answer.
func TestCache_StaleIfErrorSeesProxyErrors(t *testing.T) {
	up, _ := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=0, stale-if-error=60")
		fmt.Fprint(w, "last good")
	})
	addr := startEdge(t, `site _ {
    listen 127.0.0.1:0;
    root {{DIR}};
    location / { cache on; proxy http://`+up.Listener.Addr().String()+`; error_page 502 /oops.html; }
    location = /oops.html { static; }
}`, map[string]string{"oops.html": "sorry"})
	url := "http://" + addr + "/x"
	if _, body := cacheDo(t, "GET", url, nil); body != "last good" {
		t.Fatalf("first GET: %q", body)
	}
	up.Close()
	resp, body := cacheDo(t, "GET", url, nil)
	if resp.StatusCode != 200 || body != "last good" || resp.Header.Get("X-Cache") != "STALE" {
		t.Errorf("upstream down: %d %q X-Cache %q, want 200 \"last good\" STALE", resp.StatusCode, body, resp.Header.Get("X-Cache"))
	}
	resp, body = cacheDo(t, "GET", "http://"+addr+"/never-stored", nil)
	if resp.StatusCode != 502 || body != "sorry" {
		t.Errorf("nothing stored: %d %q, want 502 with the error page", resp.StatusCode, body)
	}
}

// A reload keeps the process cache and its entries: the cache is the
// server's, not the router's.
func TestCache_SurvivesReload(t *testing.T) {
	up, n := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "v") })
	src := `site _ {
    listen 127.0.0.1:0;
    location / { cache 1m; proxy http://` + up.Listener.Addr().String() + `; }
}`
	dir := t.TempDir()
	cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	files := static.NewCache(static.CacheConfig{})
	t.Cleanup(func() { files.Close() })
	responses, err := NewCache(cfg.Cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = responses.Close() })
	s, err := New(cfg, Options{FileCache: files, Cache: responses})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	url := "http://" + s.Addrs()[0] + "/r"
	cacheDo(t, "GET", url, nil)
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if resp, _ := cacheDo(t, "GET", url, nil); resp.Header.Get("X-Cache") != "HIT" || n.Load() != 1 {
		t.Errorf("after reload: X-Cache %q, upstream %d requests; want HIT, 1", resp.Header.Get("X-Cache"), n.Load())
	}
}

// A location's `cache { valid 1m; }`: a page stored
// with the location's lifetime is served stale (X-Cache: STALE) when the
// upstream is down after the entry went stale, within the location's
// window, and the error goes through once the window has passed. The
// cache's clock is the test's.
func TestCache_BlockStaleIfError(t *testing.T) {
	up, n := countingUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "last good") })
	src := `site _ {
    listen 127.0.0.1:0;
    location / {
        cache { valid 1m; stale_if_error 1m; }
        proxy http://` + up.Listener.Addr().String() + `;
    }
}`
	cfg, err := conf.Parse(filepath.Join(t.TempDir(), "t.conf"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	responses, err := cache.New(cache.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = responses.Close() })
	files := static.NewCache(static.CacheConfig{})
	t.Cleanup(func() { files.Close() })
	s, err := New(cfg, Options{FileCache: files, Cache: responses})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	url := "http://" + s.Addrs()[0] + "/p"

	if resp, body := cacheDo(t, "GET", url, nil); body != "last good" || resp.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("first GET: %q X-Cache %q, want MISS", body, resp.Header.Get("X-Cache"))
	}
	advance(30 * time.Second)
	if resp, _ := cacheDo(t, "GET", url, nil); resp.Header.Get("X-Cache") != "HIT" || n.Load() != 1 {
		t.Fatalf("within valid: X-Cache %q, upstream %d requests; want HIT, 1", resp.Header.Get("X-Cache"), n.Load())
	}
	up.Close()
	advance(60 * time.Second) // 90s old: stale by 30s, inside stale_if_error
	resp, body := cacheDo(t, "GET", url, nil)
	if resp.StatusCode != 200 || body != "last good" || resp.Header.Get("X-Cache") != "STALE" {
		t.Errorf("upstream down, entry stale: %d %q X-Cache %q, want 200 \"last good\" STALE", resp.StatusCode, body, resp.Header.Get("X-Cache"))
	}
	advance(2 * time.Minute) // past valid + stale_if_error
	if resp, _ := cacheDo(t, "GET", url, nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("past the window: %d X-Cache %q, want 502", resp.StatusCode, resp.Header.Get("X-Cache"))
	}
}

// conf checks max_size against its own copy of the cache's default size
// (conf does not import the edge); the two must not drift apart.
func TestCacheDefaultsAgree(t *testing.T) {
	if conf.DefaultCacheMaxSize != cache.DefaultMaxSize {
		t.Errorf("conf.DefaultCacheMaxSize = %d, cache.DefaultMaxSize = %d", conf.DefaultCacheMaxSize, cache.DefaultMaxSize)
	}
}
