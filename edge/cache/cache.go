package cache

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"go.uber.org/zap"
)

// Cache is a shared HTTP cache: one store, bounded in bytes, that any
// number of locations use through Wrap. Safe for concurrent use.
type Cache struct {
	opts Options
	log  *zap.Logger
	now  func() time.Time
	disk *disk // nil without a disk tier

	// mu guards the store: both LRUs, the indexes, the byte counts, the
	// flights and the pass markers. Hits hold it only to find the entry
	// and mark it recently used; bodies are written without it.
	mu      sync.Mutex
	mem     *simplelru.LRU[*entry, struct{}]  // entries with memory bodies; guarded by mu
	onDisk  *simplelru.LRU[*entry, struct{}]  // entries with disk bodies; guarded by mu
	groups  map[string]*group                 // by primary key; guarded by mu
	urls    map[string]map[*entry]struct{}    // by urlKey; guarded by mu
	tags    map[string]map[*entry]struct{}    // by Surrogate-Key tag; guarded by mu
	flights map[string]*flight                // fetches in progress, by entry key; guarded by mu
	passes  *simplelru.LRU[string, time.Time] // keys not to coalesce, until; guarded by mu
	bytes   int64                             // accounted memory; guarded by mu
	dbytes  int64                             // disk body bytes; guarded by mu
	closed  bool                              // guarded by mu

	bgSlots  chan struct{} // bounds background refreshes
	bg       sync.WaitGroup
	closeCtx context.Context
	cancel   context.CancelFunc

	waiting atomic.Int64 // requests waiting on another's fetch
	stats   counters
}

// group holds the variants of one primary key and the Vary names of the
// latest response stored for it.
type group struct {
	vary     []string
	variants map[string]*entry // by secondary key
}

// counters are the cumulative Stats fields.
type counters struct {
	hits, misses, stale, revalidated, bypass atomic.Uint64
	stores, evictions, purged                atomic.Uint64
}

// Stats is a snapshot of the cache's occupancy and activity.
type Stats struct {
	Entries     int   // stored responses, memory and disk
	Bytes       int64 // accounted memory bytes (≤ Options.MaxSize)
	DiskEntries int   // entries whose body is on disk
	DiskBytes   int64 // disk body bytes (≤ Options.DiskMaxSize)

	Hits        uint64 // served fresh from the store (X-Cache: HIT)
	Misses      uint64 // forwarded upstream (X-Cache: MISS)
	Stale       uint64 // served stale (X-Cache: STALE)
	Revalidated uint64 // served from the store after a 304 (X-Cache: REVALIDATED)
	Bypass      uint64 // not eligible for caching (X-Cache: BYPASS)
	Stores      uint64 // responses stored
	Evictions   uint64 // entries evicted for space
	Purged      uint64 // entries removed by purge or invalidation
}

// New builds a Cache; zero fields of opts take their defaults. A disk
// tier's directory is created and emptied of earlier body files.
func New(opts Options) (*Cache, error) {
	opts.applyDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{
		opts:    opts,
		log:     opts.Log,
		now:     opts.Now,
		groups:  make(map[string]*group),
		urls:    make(map[string]map[*entry]struct{}),
		tags:    make(map[string]map[*entry]struct{}),
		flights: make(map[string]*flight),
		bgSlots: make(chan struct{}, maxBackground),
	}
	// The LRUs are bounded by bytes here, not by count.
	c.mem, _ = simplelru.NewLRU[*entry, struct{}](math.MaxInt, nil)
	c.onDisk, _ = simplelru.NewLRU[*entry, struct{}](math.MaxInt, nil)
	c.passes, _ = simplelru.NewLRU[string, time.Time](maxPassMarkers, nil)
	if opts.DiskDir != "" {
		d, err := openDisk(opts.DiskDir)
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		c.disk = d
	}
	c.closeCtx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Wrap returns next behind the cache with the given policy. Build it once
// per location at config load; it is safe for concurrent use.
func (c *Cache) Wrap(next http.Handler, p Policy) (http.Handler, error) {
	cp, err := p.compile()
	if err != nil {
		return nil, err
	}
	return &handler{c: c, p: cp, next: next}, nil
}

// Close stops background refreshes, waits for them, and drops every
// entry, deleting disk bodies. Requests still in flight are answered but
// no longer stored. Close is safe on a nil Cache and more than once.
func (c *Cache) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.bg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.purgeAllLocked()
	return nil
}

// Stats returns current occupancy and counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	s := Stats{
		Entries:     c.mem.Len() + c.onDisk.Len(),
		Bytes:       c.bytes,
		DiskEntries: c.onDisk.Len(),
		DiskBytes:   c.dbytes,
	}
	c.mu.Unlock()
	s.Hits = c.stats.hits.Load()
	s.Misses = c.stats.misses.Load()
	s.Stale = c.stats.stale.Load()
	s.Revalidated = c.stats.revalidated.Load()
	s.Bypass = c.stats.bypass.Load()
	s.Stores = c.stats.stores.Load()
	s.Evictions = c.stats.evictions.Load()
	s.Purged = c.stats.purged.Load()
	return s
}

// lookup finds the stored variant of primary that matches r. On a miss it
// returns the key a fetch would store under (and coalesce on) and the
// Cache-Status fwd reason.
func (c *Cache) lookup(primary []byte, r *http.Request) (e *entry, key, fwd string) {
	var sb [128]byte
	c.mu.Lock()
	g := c.groups[string(primary)]
	if g == nil {
		c.mu.Unlock()
		return nil, string(primary), fwdURIMiss
	}
	sec := appendSecondary(sb[:0], r.Header, g.vary)
	e = g.variants[string(sec)]
	if e != nil {
		if e.file != "" {
			c.onDisk.Get(e)
		} else {
			c.mem.Get(e)
		}
		c.mu.Unlock()
		return e, e.key, ""
	}
	vary := g.vary
	c.mu.Unlock()
	return nil, fullKey(string(primary), vary, sec), fwdVaryMiss
}

// put stores e, replacing the variant it supersedes, and evicts least
// recently used entries until the store is within its bounds. It reports
// false (and deletes e's file) when the cache is closed or e cannot fit.
func (c *Cache) put(e *entry, replaces *entry) bool {
	e.accountSize()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || e.size > c.opts.MaxSize || (e.file != "" && e.bodyLen > c.opts.DiskMaxSize) {
		if e.file != "" && (replaces == nil || replaces.file != e.file) {
			_ = os.Remove(e.file)
		}
		return false
	}
	if replaces != nil && replaces.file != "" && replaces.file == e.file {
		if replaces.removed {
			// Evicted while revalidating: its file is gone.
			return false
		}
		replaces.fileKept = true
	}
	g := c.groups[e.primary]
	if g != nil && !equalNames(g.vary, e.vary) {
		// The latest response decides how the key varies (RFC 9111 §4.1).
		for _, old := range g.variants {
			c.removeLocked(old)
		}
		g = c.groups[e.primary]
	}
	if g != nil {
		if old := g.variants[e.secondary]; old != nil {
			c.removeLocked(old)
			g = c.groups[e.primary]
		}
	}
	if g == nil {
		g = &group{vary: e.vary, variants: make(map[string]*entry, 1)}
		c.groups[e.primary] = g
	}
	g.variants[e.secondary] = e
	if e.file != "" {
		c.onDisk.Add(e, struct{}{})
		c.dbytes += e.bodyLen
	} else {
		c.mem.Add(e, struct{}{})
	}
	c.bytes += e.size
	addIndex(c.urls, e.url, e)
	for _, t := range e.tags {
		addIndex(c.tags, t, e)
	}
	c.passes.Remove(e.key)
	c.stats.stores.Add(1)
	c.evictLocked()
	return !e.removed
}

// evictLocked removes least recently used entries until both bounds hold.
// Memory pressure evicts memory bodies first, whose bytes it frees.
func (c *Cache) evictLocked() {
	for c.bytes > c.opts.MaxSize {
		e, _, ok := c.mem.GetOldest()
		if !ok {
			if e, _, ok = c.onDisk.GetOldest(); !ok {
				break
			}
		}
		c.removeLocked(e)
		c.stats.evictions.Add(1)
	}
	for c.dbytes > c.opts.DiskMaxSize {
		e, _, ok := c.onDisk.GetOldest()
		if !ok {
			break
		}
		c.removeLocked(e)
		c.stats.evictions.Add(1)
	}
}

// removeLocked drops e from the store and every index.
func (c *Cache) removeLocked(e *entry) {
	if e.removed {
		return
	}
	e.removed = true
	if e.file != "" {
		c.onDisk.Remove(e)
		c.dbytes -= e.bodyLen
		if !e.fileKept {
			if err := os.Remove(e.file); err != nil && !os.IsNotExist(err) {
				c.log.Warn("cache: remove body file", zap.String("file", e.file), zap.Error(err))
			}
		}
	} else {
		c.mem.Remove(e)
	}
	c.bytes -= e.size
	if g := c.groups[e.primary]; g != nil && g.variants[e.secondary] == e {
		delete(g.variants, e.secondary)
		if len(g.variants) == 0 {
			delete(c.groups, e.primary)
		}
	}
	delIndex(c.urls, e.url, e)
	for _, t := range e.tags {
		delIndex(c.tags, t, e)
	}
}

// remove drops e if it is still stored.
func (c *Cache) remove(e *entry) {
	c.mu.Lock()
	c.removeLocked(e)
	c.mu.Unlock()
}

// purgeAllLocked drops every entry.
func (c *Cache) purgeAllLocked() int {
	n := 0
	for _, l := range []*simplelru.LRU[*entry, struct{}]{c.mem, c.onDisk} {
		for {
			e, _, ok := l.GetOldest()
			if !ok {
				break
			}
			c.removeLocked(e)
			n++
		}
	}
	return n
}

func addIndex(idx map[string]map[*entry]struct{}, k string, e *entry) {
	set := idx[k]
	if set == nil {
		set = make(map[*entry]struct{}, 1)
		idx[k] = set
	}
	set[e] = struct{}{}
}

func delIndex(idx map[string]map[*entry]struct{}, k string, e *entry) {
	if set := idx[k]; set != nil {
		delete(set, e)
		if len(set) == 0 {
			delete(idx, k)
		}
	}
}

func equalNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
