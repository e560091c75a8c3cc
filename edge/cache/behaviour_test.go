package cache

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RFC 9111 §4.1: each combination of the Vary'd request headers is its
// own variant; Accept-Encoding is normalised so member order and spacing
// do not split variants.
func TestVary_StoresVariantsSeparately(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language, Accept-Encoding")
		_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language")+" enc="+r.Header.Get("Accept-Encoding"))
	})
	steps := []struct {
		lang, enc string
		wantX     string
		wantBody  string
		wantHits  int64
	}{
		{"en", "gzip, br", "MISS", "lang=en enc=gzip, br", 1},
		{"fr", "gzip, br", "MISS", "lang=fr enc=gzip, br", 2},
		{"en", "gzip, br", "HIT", "lang=en enc=gzip, br", 2},
		{"fr", "gzip, br", "HIT", "lang=fr enc=gzip, br", 2},
		{"en", "br,gzip", "HIT", "lang=en enc=gzip, br", 2},
		{"en", "zstd", "MISS", "lang=en enc=zstd", 3},
		// The test's proxy adds its own Accept-Encoding upstream.
		{"en", "", "MISS", "lang=en enc=gzip", 4},
	}
	for i, s := range steps {
		var hdr []string
		hdr = append(hdr, "Accept-Language: "+s.lang)
		if s.enc != "" {
			hdr = append(hdr, "Accept-Encoding: "+s.enc)
		}
		res := e.get("/v", hdr...)
		if res.x() != s.wantX || res.body != s.wantBody || e.hits.Load() != s.wantHits {
			t.Fatalf("step %d: %q %q hits %d; want %q %q %d", i, res.x(), res.body, e.hits.Load(), s.wantX, s.wantBody, s.wantHits)
		}
	}
	if st := e.c.Stats(); st.Entries != 4 {
		t.Fatalf("entries %d, want 4 variants", st.Entries)
	}
}

// RFC 9111 §4.3.4: a 304 to the cache's conditional request updates the
// stored header fields and the stored body is served.
func TestRevalidation_304UpdatesStoredHeaders(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Control", "max-age=100")
			w.Header().Set("X-Version", "2")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("X-Version", "1")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "body-1")
	})
	if res := e.get("/r"); res.x() != "MISS" || res.body != "body-1" {
		t.Fatalf("first: %q %q", res.x(), res.body)
	}
	e.clk.Advance(11 * time.Second)
	res := e.get("/r")
	if res.x() != "REVALIDATED" || res.body != "body-1" || res.header.Get("X-Version") != "2" || res.status != 200 {
		t.Fatalf("revalidated: %d %q %q X-Version %q", res.status, res.x(), res.body, res.header.Get("X-Version"))
	}
	if got := e.originHeader().Get("If-None-Match"); got != `"v1"` {
		t.Fatalf("origin saw If-None-Match %q", got)
	}
	if res.header.Get("Content-Type") != "text/plain" || res.header.Get("Content-Length") != "6" {
		t.Fatalf("stored fields lost: %v", res.header)
	}
	// The 304's max-age=100 now governs freshness.
	e.clk.Advance(50 * time.Second)
	if res := e.get("/r"); res.x() != "HIT" || res.header.Get("X-Version") != "2" || e.hits.Load() != 2 {
		t.Fatalf("after update: %q X-Version %q hits %d", res.x(), res.header.Get("X-Version"), e.hits.Load())
	}
	if st := e.c.Stats(); st.Revalidated != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// RFC 9111 §4.3.2: the cache answers a client's conditional request
// from the stored response, on hits and on misses alike.
func TestConditionalRequests_AnsweredByCache(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(versioned(&e.hits, 200, "Cache-Control: max-age=60", `ETag: "x"`, "Last-Modified: "+httpDate(base.Add(-time.Hour))))
	// On a miss the client's condition is not sent upstream, so the
	// whole response is stored, and the client still gets its 304.
	res := e.get("/c", `If-None-Match: "x"`)
	if res.status != http.StatusNotModified || res.x() != "MISS" || e.originHeader().Get("If-None-Match") != "" {
		t.Fatalf("miss: %d %q origin INM %q", res.status, res.x(), e.originHeader().Get("If-None-Match"))
	}
	if res := e.get("/c"); res.status != 200 || res.x() != "HIT" || res.body != "v1" {
		t.Fatalf("hit: %d %q %q", res.status, res.x(), res.body)
	}
	if res := e.get("/c", `If-None-Match: W/"y", "x"`); res.status != http.StatusNotModified || res.x() != "HIT" {
		t.Fatalf("INM hit: %d %q", res.status, res.x())
	}
	if res := e.get("/c", "If-Modified-Since: "+httpDate(base)); res.status != http.StatusNotModified {
		t.Fatalf("IMS hit: %d", res.status)
	}
	if res := e.get("/c", "If-Modified-Since: "+httpDate(base.Add(-2*time.Hour))); res.status != 200 {
		t.Fatalf("IMS older: %d", res.status)
	}
}

// RFC 5861 §3: within stale-while-revalidate the stale response is served
// at once and one background request (per key) refreshes it.
func TestStaleWhileRevalidate(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if e.hits.Load() == 2 {
			<-release // hold the refresh while stale requests arrive
		}
		versioned(&e.hits, 200, "Cache-Control: max-age=10, stale-while-revalidate=30")(w, r)
	})
	if res := e.get("/s"); res.body != "v1" {
		t.Fatalf("first: %q", res.body)
	}
	e.clk.Advance(15 * time.Second)
	for i := range 20 {
		res := e.get("/s")
		if res.x() != "STALE" || res.body != "v1" || !strings.Contains(res.header.Get("Cache-Status"), "stale-while-revalidate") {
			t.Fatalf("stale %d: %q %q %q", i, res.x(), res.body, res.header.Get("Cache-Status"))
		}
	}
	once.Do(func() { close(release) })
	waitFor(t, "background refresh stored", func() bool { return e.c.Stats().Stores == 2 })
	if n := e.hits.Load(); n != 2 {
		t.Fatalf("origin hits %d, want 2 (one refresh for 20 stale requests)", n)
	}
	if res := e.get("/s"); res.x() != "HIT" || res.body != "v2" {
		t.Fatalf("after refresh: %q %q", res.x(), res.body)
	}
	// Past the window: a synchronous fetch.
	e.clk.Advance(45 * time.Second)
	if res := e.get("/s"); res.x() != "MISS" || res.body != "v3" {
		t.Fatalf("past window: %q %q", res.x(), res.body)
	}
}

// Policy.StaleWhileRevalidate applies to responses without the
// directive, but never against must-revalidate.
func TestStaleWhileRevalidate_PolicyDefault(t *testing.T) {
	for _, tc := range []struct {
		cc    string
		wantX string
	}{
		{"max-age=10", "STALE"},
		{"max-age=10, must-revalidate", "MISS"},
		{"s-maxage=10", "MISS"},
		{"s-maxage=10, stale-while-revalidate=60", "STALE"},
	} {
		t.Run(tc.cc, func(t *testing.T) {
			e := newEnv(t, Options{}, Policy{StaleWhileRevalidate: time.Minute}, nil)
			e.setHandler(versioned(&e.hits, 200, "Cache-Control: "+tc.cc))
			e.get("/p")
			e.clk.Advance(20 * time.Second)
			if res := e.get("/p"); res.x() != tc.wantX {
				t.Fatalf("X-Cache %q, want %q", res.x(), tc.wantX)
			}
			waitFor(t, "refresh", func() bool { return e.hits.Load() == 2 })
		})
	}
}

// RFC 5861 §4: within stale-if-error a 5xx or an unreachable upstream
// gets the stale response; past it, or with must-revalidate, the error.
func TestStaleIfError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pol     Policy
		cc      string
		advance time.Duration
		down    bool // origin closed: the proxy answers 502
		wantX   string
		wantSt  int
	}{
		{"directive 503", Policy{}, "max-age=10, stale-if-error=60", 20 * time.Second, false, "STALE", 200},
		{"directive transport error", Policy{}, "max-age=10, stale-if-error=60", 20 * time.Second, true, "STALE", 200},
		{"past the window", Policy{}, "max-age=10, stale-if-error=60", 80 * time.Second, false, "MISS", 503},
		{"policy default", Policy{StaleIfError: time.Hour}, "max-age=10", 20 * time.Minute, false, "STALE", 200},
		{"must-revalidate forbids", Policy{StaleIfError: time.Hour}, "max-age=10, must-revalidate", 20 * time.Second, false, "MISS", 503},
		{"proxy-revalidate forbids", Policy{StaleIfError: time.Hour}, "max-age=10, proxy-revalidate", 20 * time.Second, false, "MISS", 503},
		{"no stale-if-error", Policy{}, "max-age=10", 20 * time.Second, false, "MISS", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{}, tc.pol, nil)
			e.setHandler(versioned(&e.hits, 200, "Cache-Control: "+tc.cc))
			if res := e.get("/e"); res.body != "v1" {
				t.Fatalf("first: %q", res.body)
			}
			if tc.down {
				e.origin.Close()
			} else {
				e.setHandler(func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "down", http.StatusServiceUnavailable)
				})
			}
			e.clk.Advance(tc.advance)
			res := e.get("/e")
			if res.x() != tc.wantX || res.status != tc.wantSt {
				t.Fatalf("got %d %q (%q), want %d %q", res.status, res.x(), res.header.Get("Cache-Status"), tc.wantSt, tc.wantX)
			}
			if tc.wantX == "STALE" && (res.body != "v1" || !strings.Contains(res.header.Get("Cache-Status"), "fwd-status=5")) {
				t.Fatalf("stale body %q Cache-Status %q", res.body, res.header.Get("Cache-Status"))
			}
		})
	}
}

// RFC 9111 §4.4: a non-error response to an unsafe method invalidates
// the target URI and same-host Location / Content-Location.
func TestUnsafeMethods_Invalidate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		method    string
		target    string
		status    int
		respHdr   [2]string
		wantStale bool // /item still a HIT afterwards
	}{
		{"POST target", "POST", "/item", 200, [2]string{}, false},
		{"PUT target", "PUT", "/item", 204, [2]string{}, false},
		{"DELETE target", "DELETE", "/item", 200, [2]string{}, false},
		{"PATCH target", "PATCH", "/item", 200, [2]string{}, false},
		{"POST Location", "POST", "/other", 303, [2]string{"Location", "/item"}, false},
		{"POST Content-Location", "POST", "/other", 200, [2]string{"Content-Location", "/item"}, false},
		{"POST absolute same host", "POST", "/other", 201, [2]string{"Location", "http://HOST/item"}, false},
		{"POST other host Location", "POST", "/other", 201, [2]string{"Location", "http://elsewhere.example/item"}, true},
		{"POST error keeps", "POST", "/item", 500, [2]string{}, true},
		{"OPTIONS keeps", "OPTIONS", "/item", 200, [2]string{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{}, Policy{}, nil)
			host := strings.TrimPrefix(e.front.URL, "http://")
			e.setHandler(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					versioned(&e.hits, 200, "Cache-Control: max-age=600")(w, r)
					return
				}
				if tc.respHdr[0] != "" {
					w.Header().Set(tc.respHdr[0], strings.ReplaceAll(tc.respHdr[1], "HOST", host))
				}
				w.WriteHeader(tc.status)
			})
			e.get("/item")
			if res := e.get("/item"); res.x() != "HIT" {
				t.Fatalf("not cached: %q", res.x())
			}
			res := e.do(tc.method, tc.target)
			if res.x() != "BYPASS" {
				t.Fatalf("%s X-Cache %q", tc.method, res.x())
			}
			got := e.get("/item").x()
			if (got == "HIT") != tc.wantStale {
				t.Fatalf("after %s %s -> %d: /item %q", tc.method, tc.target, tc.status, got)
			}
		})
	}
}

// HEAD shares GET's key; a HEAD miss fetches with GET so the body is
// stored, and the HEAD client gets no body.
func TestHead_SharesKeyAndStoresGET(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(versioned(&e.hits, 200, "Cache-Control: max-age=60"))
	res := e.do(http.MethodHead, "/h")
	if res.x() != "MISS" || res.body != "" {
		t.Fatalf("HEAD: %q %q", res.x(), res.body)
	}
	if res := e.get("/h"); res.x() != "HIT" || res.body != "v1" {
		t.Fatalf("GET after HEAD: %q %q", res.x(), res.body)
	}
	if res := e.do(http.MethodHead, "/h"); res.x() != "HIT" || res.header.Get("Content-Length") != "2" {
		t.Fatalf("HEAD hit: %q %v", res.x(), res.header)
	}
}

// Single byte ranges are answered from a stored 200.
func TestRange_FromStoredResponse(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"r"`)
		_, _ = io.WriteString(w, "0123456789")
	})
	e.get("/rg")
	for _, tc := range []struct {
		hdr      []string
		status   int
		body, cr string
	}{
		{[]string{"Range: bytes=2-4"}, 206, "234", "bytes 2-4/10"},
		{[]string{"Range: bytes=7-"}, 206, "789", "bytes 7-9/10"},
		{[]string{"Range: bytes=-3"}, 206, "789", "bytes 7-9/10"},
		{[]string{"Range: bytes=20-"}, 416, "", "bytes */10"},
		{[]string{"Range: bytes=0-1,3-4"}, 200, "0123456789", ""},
		{[]string{"Range: bytes=2-4", `If-Range: "other"`}, 200, "0123456789", ""},
		{[]string{"Range: bytes=2-4", `If-Range: "r"`}, 206, "234", "bytes 2-4/10"},
	} {
		res := e.get("/rg", tc.hdr...)
		if res.status != tc.status || res.body != tc.body || res.header.Get("Content-Range") != tc.cr || res.x() != "HIT" {
			t.Errorf("%v: %d %q %q %q", tc.hdr, res.status, res.body, res.header.Get("Content-Range"), res.x())
		}
	}
}

// A response being stored streams to the first client as it arrives.
func TestMiss_StreamsWhileCapturing(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, Options{}, Policy{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "first-chunk\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second-chunk\n")
	})
	resp, err := e.client.Get(e.front.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first-chunk\n" {
		t.Fatalf("first chunk before the origin finished: %q %v", line, err)
	}
	close(release)
	_, _ = io.Copy(io.Discard, resp.Body)
	waitFor(t, "stored", func() bool { return e.c.Stats().Entries == 1 })
	if res := e.get("/stream"); res.x() != "HIT" || res.body != "first-chunk\nsecond-chunk\n" {
		t.Fatalf("hit: %q %q", res.x(), res.body)
	}
}

// A body cut off before its Content-Length is never stored.
func TestMiss_CutOffResponseNotStored(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if e.hits.Load() > 1 {
			w.Header().Set("Cache-Control", "max-age=60")
			_, _ = io.WriteString(w, "whole")
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", "1000")
		_, _ = io.WriteString(w, strings.Repeat("x", 500))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	resp, err := e.client.Get(e.front.URL + "/cut")
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("client read a cut-off body without error")
	}
	if res := e.get("/cut"); res.x() != "MISS" || res.body != "whole" {
		t.Fatalf("after cut-off: %q %q", res.x(), res.body)
	}
}

// Bodies over MaxEntrySize stream through whole and are not stored.
func TestMaxEntrySize_PassesThrough(t *testing.T) {
	big := strings.Repeat("b", 64<<10)
	e := newEnv(t, Options{MaxSize: 1 << 20, MaxEntrySize: 16 << 10}, Policy{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Query().Get("cl") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		}
		_, _ = io.WriteString(w, big)
	})
	for _, path := range []string{"/big?cl=1", "/big"} {
		for i := range 2 {
			res := e.get(path)
			if res.body != big || res.x() != "MISS" || strings.Contains(res.header.Get("Cache-Status"), "stored") && path == "/big?cl=1" {
				t.Fatalf("%s #%d: len %d %q %q", path, i, len(res.body), res.x(), res.header.Get("Cache-Status"))
			}
		}
	}
	if st := e.c.Stats(); st.Entries != 0 {
		t.Fatalf("stored %d oversized entries", st.Entries)
	}
}

// Cache-Status follows RFC 9211.
func TestCacheStatusHeader(t *testing.T) {
	e := newEnv(t, Options{Name: "edge1"}, Policy{}, nil)
	e.setHandler(versioned(&e.hits, 200, "Cache-Control: max-age=60"))
	if got := e.get("/cs").header.Get("Cache-Status"); got != "edge1; fwd=uri-miss; fwd-status=200; stored" {
		t.Fatalf("miss: %q", got)
	}
	e.clk.Advance(10 * time.Second)
	if got := e.get("/cs").header.Get("Cache-Status"); got != "edge1; hit; ttl=50" {
		t.Fatalf("hit: %q", got)
	}
	if got := e.get("/cs").header.Get("Age"); got != "10" {
		t.Fatalf("Age %q", got)
	}
	if got := e.do("POST", "/cs").header.Get("Cache-Status"); got != "edge1; fwd=method" {
		t.Fatalf("bypass: %q", got)
	}
}

// WebSocket upgrades pass by the cache.
func TestUpgrade_Bypasses(t *testing.T) {
	e := newEnv(t, Options{}, Policy{}, nil)
	e.setHandler(versioned(&e.hits, 200, "Cache-Control: max-age=60"))
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Cache") != "BYPASS" {
		t.Fatalf("X-Cache %q", resp.Header.Get("X-Cache"))
	}
}
