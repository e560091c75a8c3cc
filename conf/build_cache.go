package conf

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/tandem-server/tandem/conf/cachekey"
)

// CacheStore is the top-level `cache { }` block: the one response cache
// of the process (docs/cache.md), shared by every site and location that
// caches. It is built once at start and kept across reloads; a reload
// that changes it is logged and applies after a restart. nil when the
// block is absent: the store then has edge/cache's defaults.
type CacheStore struct {
	// MaxSize is `max_size SIZE;` the memory bound in bytes (bodies,
	// headers, keys and a per-entry overhead). Default 64m.
	MaxSize int64
	// MaxEntrySize is `max_entry_size SIZE;` the largest body kept in
	// memory. Default max_size/8.
	MaxEntrySize int64
	// DiskDir and DiskMaxSize are `disk DIR SIZE;` a disk tier for bodies
	// larger than max_entry_size, emptied at start and at stop. Default
	// none.
	DiskDir     string
	DiskMaxSize int64
	// LockTimeout is `lock_timeout DURATION;` how long a request waits
	// for another request's fetch of the same entry. Default 5s.
	LockTimeout time.Duration
	// PurgeToken and PurgeAllow are `purge TOKEN [allow CIDR...];` the
	// bearer token the purge endpoint asks for and the client networks it
	// answers. Default no token and loopback only; other networks need a
	// token.
	PurgeToken string
	PurgeAllow []netip.Prefix

	pos cacheStorePos
}

type cacheStorePos struct {
	maxEntry Pos
}

// Cache is a route's use of the response cache: `cache DURATION|on;` or
// `cache { }` with `cache_key` resolved. The edge wraps the location's
// handler in the process cache with this policy. nil: the route does not
// cache.
type Cache struct {
	// Pos is where `cache` was written (the site's, for an inherited one).
	Pos Pos
	// TTL is `cache DURATION;` or `valid DURATION;` in the block: the
	// freshness of responses that say nothing about caching (200, 203,
	// 204, 300, 301, 308 only); 0 for `cache on;` or a block without
	// valid (response headers and RFC heuristics only).
	TTL time.Duration
	// Key is `cache_key TEMPLATE;` or `key TEMPLATE;` in the block;
	// default "$scheme://$host$request_uri".
	Key string
	// StaleWhileRevalidate and StaleIfError are the block's
	// `stale_while_revalidate` and `stale_if_error`: windows past
	// freshness for responses without their own directive. 0: only the
	// response's directive counts.
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	// IgnoreClientCacheControl is the block's
	// `ignore_client_cache_control on;`: the request's Cache-Control and
	// Pragma are ignored.
	IgnoreClientCacheControl bool
}

// cacheOpts holds a block's own cache directives while loading. The
// `cache` line or block (with its valid, stale_* and
// ignore_client_cache_control) is inherited from the site as a whole;
// the key (`cache_key`, or `key` in the block) on its own.
type cacheOpts struct {
	// set: the block has a valid `cache` line or a `cache { }` block; on
	// is false for `cache off;`.
	set, on  bool
	ttl      time.Duration
	swr, sie time.Duration
	ignoreCC bool
	pos      Pos
	// bad: the block's cache line is invalid (and reported).
	bad    bool
	key    string
	keySet bool
	keyPos Pos
	// keyName is the directive that set the key in this block,
	// "cache_key" or "key", for the error when both are written.
	keyName string
}

// buildCacheStore reads the top-level `cache { }` block.
func buildCacheStore(b *builder, _ *scope, n *node) {
	b.cfg.Cache = &CacheStore{}
	b.buildBlock(newScope(inCache), n.Block)
}

// cacheSize parses a store size that must not be zero.
func cacheSize(b *builder, n *node, a arg) (int64, bool) {
	sz, err := parseSize(a.Value)
	if err == nil && sz == 0 {
		err = fmt.Errorf("must be greater than 0")
	}
	if err != nil {
		b.argErr(n, a, err)
		return 0, false
	}
	return sz, true
}

func buildCacheMaxSize(b *builder, _ *scope, n *node) {
	if sz, ok := cacheSize(b, n, n.Args[0]); ok {
		b.cfg.Cache.MaxSize = sz
	}
}

func buildCacheMaxEntrySize(b *builder, _ *scope, n *node) {
	if sz, ok := cacheSize(b, n, n.Args[0]); ok {
		b.cfg.Cache.MaxEntrySize, b.cfg.Cache.pos.maxEntry = sz, n.Pos
	}
}

// buildCacheDisk reads `disk DIR SIZE;`.
func buildCacheDisk(b *builder, _ *scope, n *node) {
	if sz, ok := cacheSize(b, n, n.Args[1]); ok {
		b.cfg.Cache.DiskDir, b.cfg.Cache.DiskMaxSize = n.path(n.Args[0]), sz
	}
}

func buildCacheLockTimeout(b *builder, _ *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		b.cfg.Cache.LockTimeout = d
	}
}

// buildCachePurge reads `purge TOKEN [allow CIDR...];`.
func buildCachePurge(b *builder, _ *scope, n *node) {
	tok := n.Args[0]
	if tok.Value == "" || tok.Value == "allow" {
		b.argErr(n, tok, fmt.Errorf("expected a token first, as in \"purge s3cret allow 10.0.0.0/8;\", got %q", tok.Value))
		return
	}
	rest := n.Args[1:]
	var allow []netip.Prefix
	if len(rest) > 0 {
		if rest[0].Value != "allow" {
			b.argErr(n, rest[0], fmt.Errorf("expected \"allow\" after the token, got %q", rest[0].Value))
			return
		}
		if len(rest) == 1 {
			b.argErr(n, rest[0], fmt.Errorf("\"allow\" needs at least one network"))
			return
		}
		for _, a := range rest[1:] {
			p, err := parseTrustedPrefix(a.Value)
			if err != nil {
				b.argErr(n, a, fmt.Errorf("expected a CIDR like 10.0.0.0/8 or an IP address, got %q", a.Value))
				return
			}
			allow = append(allow, p)
		}
	}
	c := b.cfg.Cache
	c.PurgeToken, c.PurgeAllow = tok.Value, allow
}

// buildCache reads `cache DURATION|on|off;` in a site or location.
func buildCache(b *builder, sc *scope, n *node) {
	o := &sc.route.cacheOpts
	switch v := n.Args[0].Value; v {
	case "off":
		o.set, o.on, o.pos = true, false, n.Pos
	case "on":
		o.set, o.on, o.ttl, o.pos = true, true, 0, n.Pos
	default:
		d, err := parseDuration(v)
		switch {
		case err != nil:
			err = fmt.Errorf("expected a duration like 10m, on or off, got %q", v)
		case d == 0:
			err = fmt.Errorf("must be greater than 0 (\"cache on;\" follows the response headers alone)")
		}
		if err != nil {
			b.argErr(n, n.Args[0], err)
			o.bad = true
			return
		}
		o.set, o.on, o.ttl, o.pos = true, true, d, n.Pos
	}
}

// buildCacheKey reads `cache_key TEMPLATE;` in a site or location, and
// `key TEMPLATE;` in its `cache { }` block, and checks the template with
// the cache's own compiler. The two are one setting: a block writes it
// once.
func buildCacheKey(b *builder, sc *scope, n *node) {
	a := n.Args[0]
	o := &sc.route.cacheOpts
	if o.keyName != "" {
		b.errs.add(n.Pos, "%q conflicts with %q at %s; the key is set once per block", n.Name, o.keyName, o.keyPos)
		return
	}
	if _, err := cachekey.Parse(a.Value); err != nil {
		b.argErr(n, a, fmt.Errorf("cache key %q: %w", a.Value, err))
		o.keyName, o.keyPos = n.Name, a.Pos
		return
	}
	o.key, o.keySet, o.keyPos, o.keyName = a.Value, true, a.Pos, n.Name
}

// buildCacheBlock reads `cache { ... }` in a site or location: `cache
// on;` with the policy directives inside it.
func buildCacheBlock(b *builder, sc *scope, n *node) {
	o := &sc.route.cacheOpts
	o.set, o.on, o.ttl, o.pos = true, true, 0, n.Pos
	inner := newScope(inRouteCache)
	inner.site, inner.loc, inner.route = sc.site, sc.loc, sc.route
	b.buildBlock(inner, n.Block)
}

// buildCacheValid reads `valid DURATION;` the block's `cache DURATION;`.
func buildCacheValid(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		sc.route.cacheOpts.ttl = d
	}
}

// cacheWindow reads a stale window; 0 is allowed and means the
// response's own directive alone.
func cacheWindow(b *builder, n *node) (time.Duration, bool) {
	d, err := parseDuration(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return 0, false
	}
	return d, true
}

func buildCacheStaleWhileRevalidate(b *builder, sc *scope, n *node) {
	if d, ok := cacheWindow(b, n); ok {
		sc.route.cacheOpts.swr = d
	}
}

func buildCacheStaleIfError(b *builder, sc *scope, n *node) {
	if d, ok := cacheWindow(b, n); ok {
		sc.route.cacheOpts.sie = d
	}
}

func buildCacheIgnoreClientCC(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		sc.route.cacheOpts.ignoreCC = *v
	}
}

// buildCachePurgeHandler reads `cache_purge;` the purge endpoint's POST
// form as a location's handler.
func buildCachePurgeHandler(b *builder, sc *scope, n *node) {
	if b.claimHandler(sc, n) {
		sc.route.CachePurge = true
	}
}

// DefaultCacheMaxSize is max_size's default, the same as edge/cache's
// DefaultMaxSize (an edge test holds them equal).
const DefaultCacheMaxSize = 64 << 20

// validateCacheStore checks what the store's lines say together, as
// edge/cache.New will (without its disk I/O).
func validateCacheStore(c *CacheStore, errs *errList) {
	if c == nil {
		return
	}
	maxSize := c.MaxSize
	if maxSize == 0 {
		maxSize = DefaultCacheMaxSize
	}
	if c.MaxEntrySize > maxSize {
		errs.add(c.pos.maxEntry, "max_entry_size %d is larger than max_size %d", c.MaxEntrySize, maxSize)
	}
}

// validateCacheOpts reports cache_key lines that cannot apply: in a
// location that does not cache (its own or its site's cache line), or at
// site level when neither the site nor any location taking the key from
// it caches.
func validateCacheOpts(s *Site, errs *errList) {
	so := &s.Route.cacheOpts
	caches := func(o *cacheOpts) (on, bad bool) {
		if o.set || o.bad {
			return o.on, o.bad
		}
		return so.on, so.bad
	}
	siteKeyUsed := so.on
	for _, l := range s.Locations {
		o := &l.Route.cacheOpts
		on, bad := caches(o)
		if o.keySet && !on && !bad {
			errs.add(o.keyPos, "\"cache_key\" has no effect without \"cache\" in this location or inherited from its site")
		}
		if !o.keySet && (on || bad) {
			siteKeyUsed = true
		}
	}
	if so.keySet && !siteKeyUsed && !so.bad {
		errs.add(so.keyPos, "\"cache_key\" has no effect without \"cache\" in this site or a location taking the key from it")
	}
}

// inheritCacheOpts fills a location's unset cache settings from its site.
func inheritCacheOpts(o, site *cacheOpts) {
	if !o.set {
		o.set, o.on, o.ttl, o.pos = site.set, site.on, site.ttl, site.pos
		o.swr, o.sie, o.ignoreCC = site.swr, site.sie, site.ignoreCC
	}
	if !o.keySet {
		o.key, o.keySet, o.keyPos = site.key, site.keySet, site.keyPos
	}
}

// finishCache builds a route's Cache from its (inherited) settings; nil
// when the block does not cache or is the purge endpoint.
func finishCache(r *Route) {
	o := &r.cacheOpts
	if !o.on || r.CachePurge {
		r.Cache = nil
		return
	}
	r.Cache = &Cache{Pos: o.pos, TTL: o.ttl, Key: o.key,
		StaleWhileRevalidate: o.swr, StaleIfError: o.sie, IgnoreClientCacheControl: o.ignoreCC}
	if r.Cache.Key == "" {
		r.Cache.Key = cachekey.Default
	}
}

// UsesCache reports whether the config caches anywhere or has a
// top-level cache block; the edge answers PURGE only then.
func (cfg *Config) UsesCache() bool {
	if cfg.Cache != nil {
		return true
	}
	for _, s := range cfg.Sites {
		if s.Route.Cache != nil || s.Route.CachePurge {
			return true
		}
		for _, l := range s.Locations {
			if l.Route.Cache != nil || l.Route.CachePurge {
				return true
			}
		}
	}
	return false
}

// Equal reports whether two cache blocks configure the same store,
// wherever their lines are; nil is the block left out.
func (c *CacheStore) Equal(o *CacheStore) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.MaxSize == o.MaxSize && c.MaxEntrySize == o.MaxEntrySize &&
		c.DiskDir == o.DiskDir && c.DiskMaxSize == o.DiskMaxSize &&
		c.LockTimeout == o.LockTimeout && c.PurgeToken == o.PurgeToken &&
		slices.Equal(c.PurgeAllow, o.PurgeAllow)
}
