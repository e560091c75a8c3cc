package cache

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is the cache's clock in tests, so freshness never sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is an origin on loopback, a reverse proxy to it wrapped by the
// cache, and a front server on loopback.
type env struct {
	t      *testing.T
	clk    *fakeClock
	c      *Cache
	front  *httptest.Server
	origin *httptest.Server
	client *http.Client

	hits    atomic.Int64 // requests the origin answered
	mu      sync.Mutex
	handler http.HandlerFunc
	lastReq http.Header // the origin's last request header
}

func newEnv(t *testing.T, opts Options, pol Policy, h http.HandlerFunc) *env {
	t.Helper()
	e := &env{t: t, clk: newClock(), handler: h}
	if h == nil {
		e.handler = func(w http.ResponseWriter, r *http.Request) {}
	}
	if opts.Now == nil {
		opts.Now = e.clk.Now
	}
	e.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		e.mu.Lock()
		e.lastReq = r.Header.Clone()
		h := e.handler
		e.mu.Unlock()
		// Date from the fake clock, so that apparent age is zero.
		w.Header().Set("Date", e.clk.Now().UTC().Format(http.TimeFormat))
		h(w, r)
	}))
	t.Cleanup(e.origin.Close)
	u, _ := url.Parse(e.origin.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	t.Cleanup(func() { _ = c.Close() })
	wrapped, err := c.Wrap(proxy, pol)
	if err != nil {
		t.Fatal(err)
	}
	e.front = httptest.NewServer(wrapped)
	t.Cleanup(e.front.Close)
	e.client = &http.Client{
		Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

// setHandler replaces the origin's behaviour.
func (e *env) setHandler(h http.HandlerFunc) {
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

func (e *env) originHeader() http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastReq
}

// result is a response read whole.
type result struct {
	status int
	header http.Header
	body   string
}

func (r *result) x() string { return r.header.Get("X-Cache") }

// do sends a request to the front server; hdr is "Name: value" pairs.
func (e *env) do(method, path string, hdr ...string) *result {
	e.t.Helper()
	res, err := e.try(method, path, hdr...)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return res
}

// try is do for other goroutines: it returns the error.
func (e *env) try(method, path string, hdr ...string) (*result, error) {
	req, err := http.NewRequest(method, e.front.URL+path, nil)
	if err != nil {
		return nil, err
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &result{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

func (e *env) get(path string, hdr ...string) *result {
	e.t.Helper()
	return e.do(http.MethodGet, path, hdr...)
}

// waitFor polls cond for up to 5 s (for background work only; freshness
// never needs waiting).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// versioned answers with the given header pairs and a body naming the
// origin hit count, and honours If-None-Match against an ETag among them.
func versioned(hits *atomic.Int64, status int, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		etag := ""
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			w.Header().Add(k, v)
			if strings.EqualFold(k, "ETag") {
				etag = v
			}
		}
		if etag != "" && r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "v"+strconv.FormatInt(hits.Load(), 10))
	}
}

// httpDate formats t for Date, Expires and Last-Modified.
func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
