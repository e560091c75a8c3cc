package static

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// eventually polls cond until it holds or a deadline passes; no fixed sleeps.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCache_ModifiedFileNoticed: a rewrite (even same size) is served
// within Valid, in memory and disk modes.
func TestCache_ModifiedFileNoticed(t *testing.T) {
	for _, m := range cacheModes {
		root, _ := tree(t)
		cfg := m.cfg
		cfg.Valid = 20 * time.Millisecond
		h := newTestHandler(t, Options{Root: root}, cfg)
		if b := do(h, "GET", "/hello.txt").Body.String(); b != "hello world" {
			t.Fatalf("%s: first body %q", m.name, b)
		}
		writeFile(t, filepath.Join(root, "hello.txt"), "HELLO WORLD") // same size
		eventually(t, m.name+" same-size rewrite", func() bool {
			return do(h, "GET", "/hello.txt").Body.String() == "HELLO WORLD"
		})
		writeFile(t, filepath.Join(root, "hello.txt"), "longer content now")
		eventually(t, m.name+" resize", func() bool {
			w := do(h, "GET", "/hello.txt")
			return w.Body.String() == "longer content now" && w.Header().Get("Content-Length") == "18"
		})
		must(t, os.Remove(filepath.Join(root, "hello.txt")))
		eventually(t, m.name+" removal", func() bool { return do(h, "GET", "/hello.txt").Code == 404 })
	}
}

// TestCache_NegativeEntry: "not found" is cached for Valid, then a newly
// created file (or index, or sidecar) is noticed.
func TestCache_NegativeEntry(t *testing.T) {
	root, _ := tree(t)
	long := newTestHandler(t, Options{Root: root}, CacheConfig{Valid: time.Hour})
	short := newTestHandler(t, Options{Root: root, Precompressed: []string{"gzip"}}, CacheConfig{Valid: 20 * time.Millisecond})
	for _, h := range []*Handler{long, short} {
		if k := h.Lookup("/new.txt"); k != NotFound {
			t.Fatalf("Lookup before create = %v", k)
		}
		do(h, "GET", "/sub/")
		do(h, "GET", "/hello.txt", "Accept-Encoding", "gzip")
	}
	writeFile(t, filepath.Join(root, "new.txt"), "new")
	writeFile(t, filepath.Join(root, "sub", "index.html"), "sub index")
	writeFile(t, filepath.Join(root, "hello.txt.gz"), "gz")
	if k := long.Lookup("/new.txt"); k != NotFound {
		t.Errorf("negative entry not cached: %v", k)
	}
	eventually(t, "created file", func() bool { return short.Lookup("/new.txt") == File })
	eventually(t, "created index", func() bool { return do(short, "GET", "/sub/").Body.String() == "sub index" })
	eventually(t, "created sidecar", func() bool {
		return do(short, "GET", "/hello.txt", "Accept-Encoding", "gzip").Body.String() == "gz"
	})
}

// TestCache_HitTouchesNoDisk: within Valid a cached small file is served
// from memory even after it is deleted.
func TestCache_HitTouchesNoDisk(t *testing.T) {
	root, _ := tree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{Valid: time.Hour})
	do(h, "GET", "/hello.txt")
	must(t, os.Remove(filepath.Join(root, "hello.txt")))
	if w := do(h, "GET", "/hello.txt"); w.Code != 200 || w.Body.String() != "hello world" {
		t.Errorf("cache hit went to disk: %d %q", w.Code, w.Body.String())
	}
}

// TestCache_Bounds: entries and content bytes stay within their limits.
func TestCache_Bounds(t *testing.T) {
	root, _ := tree(t)
	c := NewCache(CacheConfig{MaxEntries: 3, MaxBytes: 25})
	defer c.Close()
	h, err := New(Options{Root: root}, c)
	must(t, err)
	defer h.Close()
	for _, p := range []string{"/hello.txt", "/range.txt", "/index.html", "/app.js", "/a%20b.txt", "/nope", "/docs/"} {
		if w := do(h, "GET", p); p != "/nope" && w.Code != 200 {
			t.Errorf("GET %s = %d", p, w.Code)
		}
		if c.lru.Len() > 3 || c.bytes.Load() > 25 || c.bytes.Load() < 0 {
			t.Fatalf("after %s: %s", p, c)
		}
	}
	c.Close()
	if c.bytes.Load() != 0 {
		t.Errorf("after Close: %s", c)
	}
}

// TestCache_SharedAcrossHandlers: one cache, two roots, same URL path.
func TestCache_SharedAcrossHandlers(t *testing.T) {
	r1, _ := tree(t)
	r2, _ := tree(t)
	writeFile(t, filepath.Join(r2, "hello.txt"), "second root")
	c := NewCache(CacheConfig{})
	defer c.Close()
	h1, err := New(Options{Root: r1}, c)
	must(t, err)
	h2, err := New(Options{Root: r2}, c)
	must(t, err)
	if a, b := do(h1, "GET", "/hello.txt").Body.String(), do(h2, "GET", "/hello.txt").Body.String(); a != "hello world" || b != "second root" {
		t.Errorf("handlers share entries: %q %q", a, b)
	}
}

// TestCache_ConcurrentRewrite: run with -race; every response is one of the
// versions, whole, while the file is rewritten.
func TestCache_ConcurrentRewrite(t *testing.T) {
	root, _ := tree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{Valid: time.Millisecond})
	name := filepath.Join(root, "hello.txt")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := do(h, "GET", "/hello.txt")
				if b := w.Body.String(); w.Code == 200 && b != "hello world" && b != "v2 v2 v2 v2" {
					t.Errorf("torn body %q", b)
					return
				}
			}
		}()
	}
	for i := range 50 {
		body := "hello world"
		if i%2 == 1 {
			body = "v2 v2 v2 v2"
		}
		tmp := name + ".tmp"
		writeFile(t, tmp, body)
		must(t, os.Rename(tmp, name)) // atomic replace, as deploy tools do
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
}

// spyConn records how many response bytes reached the socket through
// ReadFrom with an *io.SectionReader over an *os.File: what the edge's
// connections send with sendfile(2) at an offset.
type spyConn struct {
	*net.TCPConn
	fromFile *atomic.Int64
}

func (c spyConn) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.TCPConn.ReadFrom(r)
	if sr, ok := r.(*io.SectionReader); ok {
		if ra, _, _ := sr.Outer(); ra != nil {
			if _, ok := ra.(*os.File); ok {
				c.fromFile.Add(n)
			}
		}
	}
	return n, err
}

type spyListener struct {
	net.Listener
	fromFile *atomic.Int64
}

func (l spyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return spyConn{c.(*net.TCPConn), l.fromFile}, nil
}

// TestServe_LargeFile_Sendfile: a file above MaxFileInMemory reaches the
// TCP connection's ReadFrom as a section of an *os.File — what the edge
// turns into sendfile(2) — for whole files and single ranges alike.
func TestServe_LargeFile_Sendfile(t *testing.T) {
	root, _ := tree(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	must(t, os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644))
	h := newTestHandler(t, Options{Root: root}, CacheConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var fromFile atomic.Int64
	srv := &http.Server{Handler: h}
	go srv.Serve(spyListener{ln, &fromFile})
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/big.bin"

	resp, err := http.Get(url)
	must(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, big) {
		t.Fatalf("body mismatch: %d bytes", len(got))
	}
	// net/http writes the first 512 bytes itself (sniffing window).
	if n := fromFile.Load(); n < int64(len(big))-512 {
		t.Errorf("only %d of %d bytes went through sendfile", n, len(big))
	}

	fromFile.Store(0)
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=100000-899999")
	resp, err = http.DefaultClient.Do(req)
	must(t, err)
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || !bytes.Equal(got, big[100000:900000]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(got))
	}
	if n := fromFile.Load(); n < 800000-512 {
		t.Errorf("range: only %d bytes through sendfile", n)
	}
	if !strings.Contains(resp.Header.Get("Content-Range"), "/1048576") {
		t.Errorf("Content-Range %q", resp.Header.Get("Content-Range"))
	}
}

// TestCache_HandlerCloseDropsEntries: a retired handler's entries (and
// their bytes) leave the shared cache.
func TestCache_HandlerCloseDropsEntries(t *testing.T) {
	root, _ := tree(t)
	c := NewCache(CacheConfig{})
	defer c.Close()
	keep, err := New(Options{Root: root}, c)
	must(t, err)
	defer keep.Close()
	gone, err := New(Options{Root: root}, c)
	must(t, err)
	do(keep, "GET", "/hello.txt")
	do(gone, "GET", "/range.txt")
	gone.Close()
	if c.lru.Len() != 1 || c.bytes.Load() != 11 {
		t.Errorf("after Close: %s", c)
	}
}
