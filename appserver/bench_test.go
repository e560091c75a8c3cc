package appserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

const helloApp = `
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'Hello, world!']
`

// BenchmarkPool_ServeHTTPDirect calls pool.ServeHTTP in-process (no HTTP
// connection): the cost of dispatch + protocol + one Python worker round
// trip, to compare with the app called in a loop.
func BenchmarkPool_ServeHTTPDirect(b *testing.B) {
	app := testConf(writeApp(b, helloApp), true, 4)
	h := startHarness(b, app)
	b.ReportAllocs()
	b.SetParallelism(2) // 2×GOMAXPROCS concurrent requests keep 4 workers busy
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/hello", nil)
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.pool.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Errorf("status %d", rec.Code)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkPool_HTTP goes through a real loopback HTTP server with
// keep-alive clients, like a load generator would.
func BenchmarkPool_HTTP(b *testing.B) {
	app := testConf(writeApp(b, helloApp), true, 4)
	h := startHarness(b, app)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(h.srv.URL + "/hello")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
