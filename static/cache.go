package static

import (
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Defaults for CacheConfig's zero fields.
const (
	defaultMaxEntries      = 10000
	defaultMaxBytes        = 64 << 20
	defaultValid           = time.Second
	defaultMaxFileInMemory = 256 << 10
)

// Cache is the shared open-file/stat cache: one per server, shared by all
// handlers, safe for concurrent use. It maps (handler, URL path) to an
// entry holding everything needed to answer without touching the disk:
// the resolution result, stat data, prepared header values, sidecar
// variants and, for small files, the content itself. Entries, positive and
// negative, are trusted for Valid and then re-stat'ed; an unchanged file
// keeps its entry, a changed one is reloaded.
type Cache struct {
	cfg   CacheConfig
	lru   *lru.Cache[cacheKey, *entry]
	epoch time.Time // base for the monotonic clock entries are stamped with

	// mu serialises writers so that replacing an entry and the byte
	// accounting that goes with it are one step; readers never take it.
	mu     sync.Mutex
	bytes  atomic.Int64  // content bytes held by cached entries
	nextID atomic.Uint64 // handler ids, so handlers share one LRU

	openFiles    atomic.Int64 // shared descriptors open (see sharedFile)
	maxOpenFiles int64
}

// cacheKey is per handler because the same URL path means different files
// (and different refusal rules) under different locations.
type cacheKey struct {
	handler uint64
	path    string
}

// NewCache builds a cache; zero fields of cfg take their defaults.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = defaultMaxEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = defaultMaxBytes
	}
	if cfg.Valid <= 0 {
		cfg.Valid = defaultValid
	}
	if cfg.MaxFileInMemory == 0 {
		cfg.MaxFileInMemory = defaultMaxFileInMemory
	}
	c := &Cache{cfg: cfg, epoch: time.Now(), maxOpenFiles: openFileBudget()}
	// The eviction callback runs synchronously inside Add/RemoveOldest/
	// Purge, which callers hold c.mu around, so accounting stays exact.
	l, err := lru.NewWithEvict(cfg.MaxEntries, func(_ cacheKey, e *entry) {
		c.bytes.Add(-e.bytes)
		e.releaseFiles()
	})
	if err != nil {
		// Only reachable with a non-positive size, excluded above.
		l, _ = lru.New[cacheKey, *entry](defaultMaxEntries)
	}
	c.lru = l
	return c
}

// Close drops every entry (and the memory they hold). The cache must not
// be used afterwards; handlers built on it should be retired first.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Purge()
	return nil
}

// String reports occupancy, for debugging and tests.
func (c *Cache) String() string {
	return fmt.Sprintf("static.Cache{entries: %d, bytes: %d}", c.lru.Len(), c.bytes.Load())
}

// now is a monotonic clock reading: immune to wall-clock steps, and cheaper
// to compare than time.Time.
func (c *Cache) now() int64 { return int64(time.Since(c.epoch)) }

// memLimit is the largest file whose content an entry may hold.
func (c *Cache) memLimit() int64 {
	return min(c.cfg.MaxFileInMemory, c.cfg.MaxBytes)
}

func (c *Cache) put(k cacheKey, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Add does not call the eviction callback for a replaced value.
	if old, ok := c.lru.Peek(k); ok {
		c.bytes.Add(-old.bytes)
		old.releaseFiles()
	}
	c.lru.Add(k, e)
	c.bytes.Add(e.bytes)
	for c.bytes.Load() > c.cfg.MaxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
	}
}

// dropHandler removes every entry of one handler.
func (c *Cache) dropHandler(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.lru.Keys() {
		if k.handler == id {
			c.lru.Remove(k)
		}
	}
}

// entry is an immutable snapshot of what a URL path resolves to, apart
// from checked, the time it was last confirmed against the disk.
type entry struct {
	checked atomic.Int64
	status  int  // 0: servable; else 403/404/500 to hand back to the caller
	kind    Kind // what the path names (Dir also when an index is served)
	slash   bool // the URL ended in "/"
	dir     target
	file    *fileData // the file to send: the path itself or the dir's index
	sigs    []statSig // every stat behind this entry, to detect changes
	bytes   int64     // content bytes held, for MaxBytes
}

// statSig is the identity of one stat result; any difference means the
// entry is rebuilt. Absent and failing paths are recorded too, so that a
// file (or sidecar, or index) appearing is noticed.
type statSig struct {
	name string
	err  bool
	size int64
	mod  int64
	ino  uint64
	mode fs.FileMode
}

func sigOf(name string, fi fs.FileInfo, err error) statSig {
	if err != nil {
		return statSig{name: name, err: true}
	}
	s := statSig{name: name, size: fi.Size(), mod: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// entry returns the current entry for urlPath, loading or revalidating it.
// The hit path is one LRU lookup and one clock read.
func (h *Handler) entry(urlPath string) *entry {
	c := h.cache
	k := cacheKey{h.id, urlPath}
	now := c.now()
	old, ok := c.lru.Get(k)
	if ok && now-old.checked.Load() < int64(c.cfg.Valid) {
		return old
	}
	e := h.build(urlPath)
	if ok && slices.Equal(e.sigs, old.sigs) {
		old.checked.Store(now)
		return old
	}
	h.fill(e)
	e.checked.Store(now)
	// Not remembered: I/O errors (the next request retries) and paths
	// refused without touching the disk (sigs == nil), which are cheap to
	// refuse again and would let junk URLs evict real entries.
	if e.status != 500 && e.sigs != nil {
		c.put(k, e)
	}
	return e
}
