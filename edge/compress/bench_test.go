package compress

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"testing"
)

// nullWriter is the cheapest ResponseWriter: it counts bytes, so the
// benchmarks measure this package and the encoders, not a recorder.
type nullWriter struct {
	h http.Header
	n int64
}

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) WriteHeader(int)             {}
func (w *nullWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var (
	benchPage  = htmlPage(100 << 10)
	benchCType = []string{"text/html; charset=utf-8"}
)

// pageHandler writes a prepared 100 KiB HTML page as one Write, setting
// headers from prepared slices the way static does.
var pageHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = benchCType
	w.Write(benchPage)
})

// runCompress serves benchPage b.N times through a Compressor offering
// only alg (identity when alg is ""), reporting input MB/s, allocations
// and the encoded size.
func runCompress(b *testing.B, alg string) {
	c := mustNew(b, Options{})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if alg != "" {
		req.Header.Set("Accept-Encoding", alg)
	}
	h := c.Wrap(pageHandler)
	w := &nullWriter{h: http.Header{}}
	b.SetBytes(int64(len(benchPage)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.n = 0
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(w.n), "wire-bytes")
	b.ReportMetric(float64(w.n)/float64(len(benchPage))*100, "%size")
}

func BenchmarkCompress_gzip(b *testing.B)     { runCompress(b, "gzip") }
func BenchmarkCompress_zstd(b *testing.B)     { runCompress(b, "zstd") }
func BenchmarkCompress_br(b *testing.B)       { runCompress(b, "br") }
func BenchmarkCompress_identity(b *testing.B) { runCompress(b, "") }

// BenchmarkNegotiate is a browser's Accept-Encoding against the default
// order.
func BenchmarkNegotiate(b *testing.B) {
	v := []string{"gzip, deflate, br, zstd"}
	b.ReportAllocs()
	for b.Loop() {
		negotiate(v, allAlgorithms)
	}
}

// TestPool_NoAllocationStorm: with warm pools a compressed 100 KiB
// response allocates a few small objects, not an encoder (each holds
// hundreds of KiB to MiBs of tables and windows).
func TestPool_NoAllocationStorm(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	// One P, as testing.AllocsPerRun uses, so the warm-up's encoder is not
	// stranded in another P's private pool slot; and no GC, which empties
	// sync.Pools by design.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	c := mustNew(t, Options{})
	h := c.Wrap(pageHandler)
	for _, alg := range allAlgorithms {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Accept-Encoding", alg)
		w := &nullWriter{h: http.Header{}}
		serveOnce := func() { clear(w.h); h.ServeHTTP(w, req) }
		serveOnce() // warm the pool
		const runs = 50
		allocs := testing.AllocsPerRun(runs, serveOnce)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			serveOnce()
		}
		runtime.ReadMemStats(&after)
		perReq := (after.TotalAlloc - before.TotalAlloc) / runs
		t.Logf("%s: %v allocs, %d bytes per request", alg, allocs, perReq)
		if allocs > 4 || perReq > 1<<10 {
			t.Errorf("%s: %v allocs, %d bytes per request; want ≤ 4 and ≤ 1 KiB", alg, allocs, perReq)
		}
		if w.h.Get("Content-Encoding") != alg {
			t.Errorf("%s: not compressed", alg)
		}
	}
}
