package edge

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/static"
)

// Benchmarks of the whole edge (listener limits, site and location
// choice, static handler) against a bare net/http handler writing the same
// 1 KiB, both over loopback keep-alive connections in this process. The
// client's cost is the same for both, so compare the ns/op of the two:
//
//	go test -run '^$' -bench 'Edge|Bare' -count 6 ./edge/

func loopbackLoad(b *testing.B, addr, path string, size int64) {
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
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

func benchEdge(b *testing.B, file string, size int) {
	benchEdgeCache(b, file, size, static.CacheConfig{})
}

func benchEdgeCache(b *testing.B, file string, size int, cc static.CacheConfig) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), bytes.Repeat([]byte("x"), size), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := conf.Parse(filepath.Join(dir, "b.conf"), []byte("site _ { listen 127.0.0.1:0; root "+dir+"; }\n"))
	if err != nil {
		b.Fatal(err)
	}
	cache := static.NewCache(cc)
	defer cache.Close()
	s, err := New(cfg, Options{FileCache: cache})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(b.Context())
	loopbackLoad(b, s.Addrs()[0], "/"+file, int64(size))
}

func BenchmarkEdgeStatic1K(b *testing.B)   { benchEdge(b, "1k.bin", 1<<10) }
func BenchmarkEdgeStatic100K(b *testing.B) { benchEdge(b, "100k.bin", 100<<10) }

// BenchmarkEdgeStatic100KSendfile serves the same file from disk with
// sendfile instead of from memory, to choose MaxFileInMemory.
func BenchmarkEdgeStatic100KSendfile(b *testing.B) {
	benchEdgeCache(b, "100k.bin", 100<<10, static.CacheConfig{MaxFileInMemory: -1})
}

// BenchmarkBare1K is the reference: net/http with no timeouts, a handler
// that sets Content-Type and writes a fixed body.
func BenchmarkBare1K(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	loopbackLoad(b, ln.Addr().String(), "/", 1<<10)
}

// BenchmarkBare1KFileHeaders is the bare handler sending what a file
// server must (ETag, Last-Modified, Accept-Ranges, Content-Length) under
// tandem's default timeouts: the floor for BenchmarkEdgeStatic1K, so the
// difference between the two is what routing and the file cache cost.
func BenchmarkBare1KFileHeaders(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<10)
	ct, et := []string{"application/octet-stream"}, []string{`"18ea3c008a1bc078-400"`}
	lm, ar, cl := []string{"Sun, 22 Nov 2026 02:09:34 GMT"}, []string{"bytes"}, []string{"1024"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"], h["Etag"], h["Last-Modified"], h["Accept-Ranges"], h["Content-Length"] = ct, et, lm, ar, cl
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       70 * time.Second,
		IdleTimeout:       75 * time.Second,
	}
	go func() { _ = srv.Serve(&edgeListener{Listener: ln, sendTimeout: sendIdleTimeout}) }()
	defer srv.Close()
	loopbackLoad(b, ln.Addr().String(), "/", 1<<10)
}

// BenchmarkEdgeH2TLS1K is BenchmarkEdgeStatic1K over TLS and HTTP/2, the
// path of bench/tls.sh, in one process: HTTP/2 runs each request in a new
// goroutine, so the handler chain's stack depth shows up here.
func BenchmarkEdgeH2TLS1K(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "1k.bin"), bytes.Repeat([]byte("x"), 1<<10), 0o644); err != nil {
		b.Fatal(err)
	}
	src := "tls_storage " + filepath.Join(dir, "tls") + ";\nsite localhost { listen 127.0.0.1:0; tls internal; root " + dir + "; }\n"
	cfg, err := conf.Parse(filepath.Join(dir, "b.conf"), []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(b.Context())
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "https://" + s.Addrs()[0] + "/1k.bin"
	b.SetBytes(1 << 10)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n != 1<<10 || resp.ProtoMajor != 2 {
				b.Errorf("status %d, %d bytes, %s", resp.StatusCode, n, resp.Proto)
				return
			}
		}
	})
}

// BenchmarkBare100KMemory and BenchmarkBare100KSection compare the two
// ways of sending a 100 KiB file on an edge connection: one Write from
// memory, or sendfile from a descriptor shared by all requests.
func BenchmarkBare100KMemory(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 100<<10)
	benchBareEdge(b, 100<<10, func(w http.ResponseWriter, _ *os.File) { _, _ = w.Write(body) })
}

func BenchmarkBare100KSection(b *testing.B) {
	benchBareEdge(b, 100<<10, func(w http.ResponseWriter, f *os.File) {
		_, _ = io.Copy(w, io.NewSectionReader(f, 0, 100<<10))
	})
}

func benchBareEdge(b *testing.B, size int, send func(http.ResponseWriter, *os.File)) {
	name := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(name, bytes.Repeat([]byte("x"), size), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cl := []string{strconv.Itoa(size)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Length"] = cl
		send(w, f)
	})}
	go func() { _ = srv.Serve(&edgeListener{Listener: ln, sendTimeout: sendIdleTimeout}) }()
	defer srv.Close()
	loopbackLoad(b, ln.Addr().String(), "/", int64(size))
}
