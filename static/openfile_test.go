package static

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// bigTree writes two files above a 1 KiB MaxFileInMemory and returns the
// root; their content differs so mixing them up shows.
func bigTree(t *testing.T) (string, []byte, []byte) {
	t.Helper()
	root := t.TempDir()
	a := bytes.Repeat([]byte("a0123456789"), 1000)
	b := bytes.Repeat([]byte("b9876543210"), 1000)
	must(t, os.WriteFile(filepath.Join(root, "a.bin"), a, 0o644))
	must(t, os.WriteFile(filepath.Join(root, "b.bin"), b, 0o644))
	return root, a, b
}

// sharedOf returns the shared descriptor the cache holds for path.
func sharedOf(t *testing.T, h *Handler, path string) *sharedFile {
	t.Helper()
	e, ok := h.cache.lru.Peek(cacheKey{h.id, path})
	if !ok || e.file == nil {
		t.Fatalf("%s: no cached file entry", path)
	}
	return e.file.identity.file
}

// closed reports whether f's descriptor has been closed.
func closed(f *os.File) bool {
	_, err := f.Stat()
	return err != nil
}

// TestSharedFile_OneDescriptorPerFile: every request for a file on disk
// reads the one descriptor the cache holds (no open per request), ranges
// included, and the bytes are right each time.
func TestSharedFile_OneDescriptorPerFile(t *testing.T) {
	root, a, _ := bigTree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{MaxFileInMemory: 1 << 10, Valid: time.Hour})
	for i := range 5 {
		w := do(h, "GET", "/a.bin")
		if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), a) {
			t.Fatalf("request %d: status %d, %d bytes", i, w.Code, w.Body.Len())
		}
	}
	s := sharedOf(t, h, "/a.bin")
	if s == nil {
		t.Fatal("no shared descriptor for a file above MaxFileInMemory")
	}
	if n := h.cache.openFiles.Load(); n != 1 {
		t.Errorf("open shared descriptors = %d, want 1", n)
	}
	w := do(h, "GET", "/a.bin", "Range", "bytes=100-199")
	if w.Code != 206 || !bytes.Equal(w.Body.Bytes(), a[100:200]) {
		t.Fatalf("range: status %d, body %q", w.Code, w.Body.String())
	}
	w = do(h, "GET", "/a.bin", "Range", "bytes=0-9,20-29")
	if w.Code != 206 || !bytes.Contains(w.Body.Bytes(), a[20:30]) {
		t.Fatalf("multipart range: status %d", w.Code)
	}
	if got := sharedOf(t, h, "/a.bin"); got != s || s.refs.Load() != 1 {
		t.Errorf("descriptor replaced or a reference leaked: refs = %d", s.refs.Load())
	}
	// Reads go through explicit offsets only.
	if off, err := s.f.Seek(0, 1); err != nil || off != 0 {
		t.Errorf("shared descriptor's own offset moved to %d (%v)", off, err)
	}
}

// TestSharedFile_ReplacedFileClosesOld: after a deploy renames a new file
// over the old one, the new content is served once the entry is
// revalidated, and the old descriptor is closed.
func TestSharedFile_ReplacedFileClosesOld(t *testing.T) {
	root, _, b := bigTree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{MaxFileInMemory: 1 << 10, Valid: time.Millisecond})
	do(h, "GET", "/a.bin")
	old := sharedOf(t, h, "/a.bin")
	tmp := filepath.Join(root, "a.bin.tmp")
	must(t, os.WriteFile(tmp, b, 0o644))
	must(t, os.Rename(tmp, filepath.Join(root, "a.bin")))
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Equal(do(h, "GET", "/a.bin").Body.Bytes(), b) {
		if time.Now().After(deadline) {
			t.Fatal("new content not served within 5s of the rename")
		}
		time.Sleep(2 * time.Millisecond) // let Valid pass; the loop is bounded by deadline
	}
	if !closed(old.f) {
		t.Error("old descriptor still open after its entry was replaced")
	}
	if n := h.cache.openFiles.Load(); n != 1 {
		t.Errorf("open shared descriptors = %d, want 1", n)
	}
}

// TestSharedFile_InUseOutlivesEntry: a request still sending when its
// entry is dropped keeps the descriptor readable; the last release closes
// it, and closing the cache leaves no descriptor open.
func TestSharedFile_InUseOutlivesEntry(t *testing.T) {
	root, a, _ := bigTree(t)
	c := NewCache(CacheConfig{MaxFileInMemory: 1 << 10, Valid: time.Hour})
	h, err := New(Options{Root: root}, c)
	must(t, err)
	do(h, "GET", "/a.bin")
	s := sharedOf(t, h, "/a.bin")
	fl, shared, err := h.openBody(&h.entry("/a.bin").file.identity)
	must(t, err)
	if shared != s {
		t.Fatal("request did not get the shared descriptor")
	}
	must(t, h.Close()) // retires the handler: its entries leave the cache
	buf := make([]byte, 10)
	if _, err := fl.ReadAt(buf, 11); err != nil || !bytes.Equal(buf, a[11:21]) {
		t.Fatalf("in-flight read after the entry was dropped: %q, %v", buf, err)
	}
	closeBody(fl, shared)
	if !closed(s.f) {
		t.Error("descriptor still open after the last release")
	}
	if s.acquire() {
		t.Error("a closed descriptor was handed to a new request")
	}
	must(t, c.Close())
	if n := c.openFiles.Load(); n != 0 {
		t.Errorf("open shared descriptors after Close = %d, want 0", n)
	}
}

// TestSharedFile_Budget: past the cache's descriptor budget, files are
// opened per request instead, and still served right.
func TestSharedFile_Budget(t *testing.T) {
	root, a, b := bigTree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{MaxFileInMemory: 1 << 10, Valid: time.Hour})
	h.cache.maxOpenFiles = 1
	for range 3 {
		if w := do(h, "GET", "/a.bin"); !bytes.Equal(w.Body.Bytes(), a) {
			t.Fatal("a.bin: wrong body")
		}
		if w := do(h, "GET", "/b.bin"); !bytes.Equal(w.Body.Bytes(), b) {
			t.Fatal("b.bin: wrong body")
		}
	}
	if sharedOf(t, h, "/a.bin") == nil || sharedOf(t, h, "/b.bin") != nil {
		t.Error("want a.bin shared and b.bin opened per request (budget 1)")
	}
	if n := h.cache.openFiles.Load(); n != 1 {
		t.Errorf("open shared descriptors = %d, want 1", n)
	}
}
