package static

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// Benchmarks. The loopback ones run a real http.Server and keep-alive
// clients in this process (client costs are identical across them, so the
// ratios are what matter); the Writer ones isolate the handler's own
// allocations:
//
//	go test -run '^$' -bench . -benchmem ./static/

// benchRoot writes files of the benchmarked sizes.
func benchRoot(b *testing.B) string {
	root := b.TempDir()
	for name, size := range map[string]int{"1k.bin": 1 << 10, "100k.bin": 100 << 10, "10m.bin": 10 << 20} {
		must(b, os.WriteFile(filepath.Join(root, name), bytes.Repeat([]byte("x"), size), 0o644))
	}
	return root
}

// benchLoopback serves h on loopback and fetches path over keep-alive
// connections from parallel clients, one connection each.
func benchLoopback(b *testing.B, h http.Handler, path string, size int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 64<<10)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n != size {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
		}
	})
}

func benchHandler(b *testing.B) *Handler {
	h, err := New(Options{Root: benchRoot(b)}, NewCache(CacheConfig{}))
	must(b, err)
	b.Cleanup(func() { h.Close() })
	return h
}

// BenchmarkBareHandler1K is the baseline: a handler writing a fixed 1 KiB.
func BenchmarkBareHandler1K(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<10)
	benchLoopback(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}), "/", 1<<10)
}

func BenchmarkServe1K(b *testing.B)   { benchLoopback(b, benchHandler(b), "/1k.bin", 1<<10) }
func BenchmarkServe100K(b *testing.B) { benchLoopback(b, benchHandler(b), "/100k.bin", 100<<10) }
func BenchmarkServe10M(b *testing.B)  { benchLoopback(b, benchHandler(b), "/10m.bin", 10<<20) }

// nopWriter is a reusable ResponseWriter, so allocs/op counts the
// handler's own allocations and nothing of a recorder's.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

func benchWriter(b *testing.B, hdr ...string) {
	h := benchHandler(b)
	r, _ := http.NewRequest("GET", "/1k.bin", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := &nopWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // warm the cache
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkWriterHot1K: the hot path alone (cache hit, plain GET).
func BenchmarkWriterHot1K(b *testing.B) { benchWriter(b) }

// BenchmarkWriter304: revalidation with If-None-Match (browser reloads).
func BenchmarkWriter304(b *testing.B) {
	h := benchHandler(b)
	r, _ := http.NewRequest("GET", "/1k.bin", nil)
	w := &nopWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	r.Header.Set("If-None-Match", w.h.Get("Etag"))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkWriterRange1K: a single Range on an in-memory file.
func BenchmarkWriterRange1K(b *testing.B) { benchWriter(b, "Range", "bytes=100-199") }
