package cache

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func bodyFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+bodySuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Bodies over MaxEntrySize go to the disk tier and are served from it.
func TestDiskTier_StoresLargeBodies(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789", 6<<10)
	e := newEnv(t, Options{MaxEntrySize: 4 << 10, DiskDir: dir, DiskMaxSize: 1 << 20}, Policy{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, big)
	})
	if res := e.get("/big"); res.x() != "MISS" || res.body != big {
		t.Fatalf("miss: %q len %d", res.x(), len(res.body))
	}
	if res := e.get("/big"); res.x() != "HIT" || res.body != big {
		t.Fatalf("hit: %q len %d", res.x(), len(res.body))
	}
	if res := e.get("/big", "Range: bytes=10-19"); res.status != 206 || res.body != "0123456789" {
		t.Fatalf("range: %d %q", res.status, res.body)
	}
	st := e.c.Stats()
	if st.DiskEntries != 1 || st.DiskBytes != int64(len(big)) || len(bodyFiles(t, dir)) != 1 {
		t.Fatalf("disk: %+v files %v", st, bodyFiles(t, dir))
	}
	if st.Bytes > 4<<10 {
		t.Fatalf("disk entry holds %d bytes of memory", st.Bytes)
	}
	_ = e.c.Close()
	if f := bodyFiles(t, dir); len(f) != 0 {
		t.Fatalf("Close left %v", f)
	}
}

// The disk tier is bounded by DiskMaxSize with LRU eviction.
func TestDiskTier_ByteBound(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("d", 64<<10)
	e := newEnv(t, Options{MaxEntrySize: 4 << 10, DiskDir: dir, DiskMaxSize: 200 << 10, DiskMaxEntrySize: 100 << 10}, Policy{},
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			_, _ = io.WriteString(w, big)
		})
	for _, p := range []string{"/1", "/2", "/3", "/4", "/5"} {
		e.get(p)
	}
	st := e.c.Stats()
	if st.DiskBytes > 200<<10 || st.DiskEntries != 3 || len(bodyFiles(t, dir)) != 3 {
		t.Fatalf("disk: %+v files %d", st, len(bodyFiles(t, dir)))
	}
	if e.get("/5").x() != "HIT" || e.get("/1").x() != "MISS" {
		t.Fatal("disk eviction is not LRU")
	}
}

// New clears body and temporary files an earlier process left, and
// nothing else.
func TestDiskTier_ClearsLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"abc-1.body", ".tmp-123", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := New(Options{DiskDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "keep.txt" {
		t.Fatalf("left: %v", ents)
	}
}

// fullFile fails like a full disk after limit bytes.
type fullFile struct {
	f     *os.File
	n     int
	limit int
}

func (f *fullFile) Write(p []byte) (int, error) {
	if f.n+len(p) > f.limit {
		return 0, &os.PathError{Op: "write", Path: f.f.Name(), Err: syscall.ENOSPC}
	}
	f.n += len(p)
	return f.f.Write(p)
}
func (f *fullFile) Name() string { return f.f.Name() }
func (f *fullFile) Close() error { return f.f.Close() }

// A full disk logs an error and passes the response through whole,
// unstored; the request never fails.
func TestDiskTier_FullDiskPassesThrough(t *testing.T) {
	dir := t.TempDir()
	core, logs := observer.New(zap.ErrorLevel)
	big := strings.Repeat("f", 64<<10)
	e := newEnv(t, Options{MaxEntrySize: 4 << 10, DiskDir: dir, Log: zap.New(core)}, Policy{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, big)
	})
	e.c.disk.create = func(dir string) (tempFile, error) {
		f, err := os.CreateTemp(dir, tempPrefix+"*")
		if err != nil {
			return nil, err
		}
		return &fullFile{f: f, limit: 16 << 10}, nil
	}
	for i := range 2 {
		if res := e.get("/full"); res.status != 200 || res.body != big || res.x() != "MISS" {
			t.Fatalf("#%d: %d %q len %d", i, res.status, res.x(), len(res.body))
		}
	}
	if logs.Len() == 0 || !errors.Is(logs.All()[0].Context[1].Interface.(error), syscall.ENOSPC) {
		t.Fatalf("no ENOSPC error logged: %v", logs.All())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
