package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// page1K is the origin for BenchmarkCacheHit: a 1 KiB HTML page.
var page1K = []byte(strings.Repeat("<p>tandem</p>\n", 1024/14+1)[:1024])

func pageHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
	w.Header().Set("ETag", `"page-1"`)
	_, _ = w.Write(page1K)
}

// BenchmarkCacheHit serves a stored 1 KiB page: through Wrap with a
// minimal writer (the cache's own cost), and over loopback HTTP/1.1 with
// keep-alive, beside the same page from a plain handler ("direct").
func BenchmarkCacheHit(b *testing.B) {
	c, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	h, err := c.Wrap(http.HandlerFunc(pageHandler), Policy{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("handler", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, "http://example.com/page", nil)
		w := &discardWriter{h: make(http.Header)}
		h.ServeHTTP(w, req)
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			w.status, w.n = 0, 0
			h.ServeHTTP(w, req)
		}
		if w.n != len(page1K) || w.h.Get("X-Cache") != "HIT" {
			b.Fatalf("not a hit: %d %v", w.n, w.h)
		}
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"loopback", h}, {"loopback-direct", http.HandlerFunc(pageHandler)}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			defer client.CloseIdleConnections()
			get := func() {
				resp, err := client.Get(srv.URL + "/page")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			get()
			b.ReportAllocs()
			for b.Loop() {
				get()
			}
		})
	}
}
