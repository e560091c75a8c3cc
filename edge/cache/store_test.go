package cache

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// discardWriter is a minimal ResponseWriter for driving Wrap directly.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.n += len(p)
	return len(p), nil
}

// The store evicts least recently used entries to stay within MaxSize
// bytes: a recently read entry survives, the oldest goes.
func TestEviction_ByteBoundLRU(t *testing.T) {
	body := strings.Repeat("e", 8<<10)
	e := newEnv(t, Options{MaxSize: 64 << 10, MaxEntrySize: 16 << 10}, Policy{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		_, _ = w.Write([]byte(body))
	})
	for i := range 6 {
		e.get("/" + strconv.Itoa(i))
	}
	if st := e.c.Stats(); st.Entries != 6 || st.Evictions != 0 {
		t.Fatalf("after 6: %+v", st)
	}
	if e.get("/0").x() != "HIT" { // now most recently used
		t.Fatal("/0 not stored")
	}
	e.get("/6")
	e.get("/7")
	st := e.c.Stats()
	if st.Bytes > 64<<10 || st.Evictions == 0 || st.Entries >= 8 {
		t.Fatalf("after 8: %+v", st)
	}
	if x := e.get("/0").x(); x != "HIT" {
		t.Fatalf("recently used /0 evicted: %q", x)
	}
	if x := e.get("/1").x(); x != "MISS" {
		t.Fatalf("least recently used /1 kept: %q", x)
	}
}

// Filling the cache with ten times its bound keeps the accounted size
// within the bound, and the heap within the bound plus fixed overhead.
func TestMemory_BoundedUnderTenfoldFill(t *testing.T) {
	const bound = 4 << 20
	const size = 8 << 10
	body := make([]byte, size)
	c, err := New(Options{MaxSize: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = w.Write(body)
	}), Policy{})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i*size < 10*bound; i++ {
		w := &discardWriter{h: make(http.Header)}
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://example.com/page/"+strconv.Itoa(i), nil))
		if w.n != size {
			t.Fatalf("request %d: body %d", i, w.n)
		}
		if st := c.Stats(); st.Bytes > bound {
			t.Fatalf("request %d: accounted %d > bound %d", i, st.Bytes, bound)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := c.Stats()
	if st.Evictions == 0 || st.Bytes < bound*3/4 {
		t.Fatalf("store not exercised: %+v", st)
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	const limit = bound + bound/2 + 1<<20
	t.Logf("entries %d, accounted %d, heap growth %d (limit %d)", st.Entries, st.Bytes, growth, limit)
	if growth > limit {
		t.Fatalf("heap grew %d bytes for a %d-byte bound", growth, bound)
	}
	runtime.KeepAlive(c)
}
