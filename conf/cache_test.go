package conf

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// TestCache_Model pins how the cache directives land in the model: the
// top-level block fills CacheStore; a site's cache and cache_key are
// defaults for its locations, each inherited on its own; `cache off;`
// in a location wins; `cache on;` has no default lifetime; the purge
// location never caches.
func TestCache_Model(t *testing.T) {
	cfg := mustParse(t, `
cache {
    max_size 256m;
    max_entry_size 4m;
    disk /var/cache/tandem 10g;
    lock_timeout 2s;
    purge s3cret allow 127.0.0.1 10.0.0.0/8;
}
site a {
    listen 80;
    root /www;
    cache 10m;
    cache_key "$scheme://$host$uri";
    location /plain/ { }
    location /off/ { cache off; }
    location /on/ { cache on; }
    location /key/ { cache_key "$host$request_uri|$http_x_tenant"; }
    location = /_tandem/purge { cache_purge; }
}
site b { listen 81; root /www; }`)
	wantStore := &CacheStore{
		MaxSize: 256 << 20, MaxEntrySize: 4 << 20,
		DiskDir: "/var/cache/tandem", DiskMaxSize: 10 << 30,
		LockTimeout: 2 * time.Second, PurgeToken: "s3cret",
		PurgeAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")},
	}
	if !wantStore.Equal(cfg.Cache) {
		t.Errorf("store = %+v\nwant %+v", cfg.Cache, wantStore)
	}
	a := cfg.Sites[0]
	sitePos := Pos{File: "/t/main.conf", Line: 12, Col: 5}
	siteC := &Cache{Pos: sitePos, TTL: 10 * time.Minute, Key: "$scheme://$host$uri"}
	if !reflect.DeepEqual(a.Route.Cache, siteC) {
		t.Errorf("site cache = %+v, want %+v", a.Route.Cache, siteC)
	}
	loc := func(i int) *Cache { return a.Locations[i].Route.Cache }
	if c := loc(0); !reflect.DeepEqual(c, siteC) {
		t.Errorf("a plain location inherits the site's cache: %+v", c)
	}
	if c := loc(1); c != nil {
		t.Errorf("cache off in a location: %+v, want nil", c)
	}
	if c := loc(2); c == nil || c.TTL != 0 || c.Key != siteC.Key {
		t.Errorf("cache on: no default lifetime, the site's key: %+v", c)
	}
	if c := loc(3); c == nil || c.TTL != 10*time.Minute || c.Key != "$host$request_uri|$http_x_tenant" {
		t.Errorf("own key, the site's lifetime: %+v", c)
	}
	if c := loc(4); c != nil || !a.Locations[4].Route.CachePurge {
		t.Errorf("the purge location never caches: %+v, purge %v", c, a.Locations[4].Route.CachePurge)
	}
	if b := cfg.Sites[1]; b.Route.Cache != nil {
		t.Errorf("no cache line: %+v, want nil", b.Route.Cache)
	}
	if !cfg.UsesCache() {
		t.Error("UsesCache = false with a cache block")
	}
	plain := mustParse(t, "site a { listen 80; root /www; }")
	if plain.Cache != nil || plain.UsesCache() {
		t.Errorf("a config without cache lines: store %+v, UsesCache %v", plain.Cache, plain.UsesCache())
	}
	if c := mustParse(t, "site a { listen 80; location / { cache 1m; proxy http://127.0.0.1:9; } }"); c.Cache != nil || !c.UsesCache() {
		t.Errorf("cache without a block: store %+v (want nil: defaults), UsesCache %v", c.Cache, c.UsesCache())
	}
	if d := mustParse(t, "site a { listen 80; location / { cache on; proxy http://127.0.0.1:9; } }").Sites[0].Locations[0].Route.Cache; d == nil || d.Key != "$scheme://$host$request_uri" {
		t.Errorf("default key: %+v", d)
	}
}

// TestCache_Block pins `cache { }` in a site or location: the block is
// `cache on;` plus its policy directives; a location's own cache line or
// block replaces the site's as a whole; the key (key or cache_key) is
// inherited on its own.
func TestCache_Block(t *testing.T) {
	cfg := mustParse(t, `
cache { max_size 1m; }
site a {
    listen 80;
    root /www;
    cache {
        valid 10m;
        key "$host$uri";
        stale_while_revalidate 30s;
        stale_if_error 1h;
        ignore_client_cache_control on;
    }
    location /plain/ { }
    location /line/ { cache 1m; }
    location /empty/ { cache { } }
    location /own/ { cache { valid 2m; stale_if_error 0; ignore_client_cache_control off; } cache_key $uri; }
    location /off/ { cache off; }
}`)
	a := cfg.Sites[0]
	siteC := &Cache{Pos: Pos{File: "/t/main.conf", Line: 6, Col: 5}, TTL: 10 * time.Minute, Key: "$host$uri",
		StaleWhileRevalidate: 30 * time.Second, StaleIfError: time.Hour, IgnoreClientCacheControl: true}
	if !reflect.DeepEqual(a.Route.Cache, siteC) {
		t.Errorf("site cache = %+v, want %+v", a.Route.Cache, siteC)
	}
	loc := func(i int) *Cache { return a.Locations[i].Route.Cache }
	if c := loc(0); !reflect.DeepEqual(c, siteC) {
		t.Errorf("a plain location inherits the site's block: %+v", c)
	}
	line := &Cache{Pos: Pos{File: "/t/main.conf", Line: 14, Col: 23}, TTL: time.Minute, Key: "$host$uri"}
	if c := loc(1); !reflect.DeepEqual(c, line) {
		t.Errorf("a cache line replaces the site's block, keeps its key: %+v, want %+v", c, line)
	}
	empty := &Cache{Pos: Pos{File: "/t/main.conf", Line: 15, Col: 24}, Key: "$host$uri"}
	if c := loc(2); !reflect.DeepEqual(c, empty) {
		t.Errorf("an empty block is cache on: %+v, want %+v", c, empty)
	}
	own := &Cache{Pos: Pos{File: "/t/main.conf", Line: 16, Col: 22}, TTL: 2 * time.Minute, Key: "$uri"}
	if c := loc(3); !reflect.DeepEqual(c, own) {
		t.Errorf("own block and key: %+v, want %+v", c, own)
	}
	if c := loc(4); c != nil {
		t.Errorf("cache off under a site block: %+v, want nil", c)
	}
	if cfg.Cache == nil || cfg.Cache.MaxSize != 1<<20 {
		t.Errorf("the top-level block is still the store: %+v", cfg.Cache)
	}
}

// TestCache_StoreEqual: a reload compares stores by value, not by where
// the lines are.
func TestCache_StoreEqual(t *testing.T) {
	a := mustParse(t, "cache { max_size 1m; }\nsite a { listen 80; root /www; }").Cache
	b := mustParse(t, "\n\ncache {\n max_size 1m;\n}\nsite a { listen 80; root /www; }").Cache
	c := mustParse(t, "cache { max_size 2m; }\nsite a { listen 80; root /www; }").Cache
	var none *CacheStore
	if !a.Equal(b) || a.Equal(c) || a.Equal(none) || !none.Equal(nil) {
		t.Errorf("Equal: same values elsewhere %v, other size %v, nil %v, nil-nil %v", a.Equal(b), a.Equal(c), a.Equal(none), none.Equal(nil))
	}
}

// TestCache_Errors: every cache error points at what was written.
func TestCache_Errors(t *testing.T) {
	const f = "/t/main.conf:"
	top := func(body string) string { return "cache {\n" + body + "\n}\nsite a { listen 80; root /www; }\n" }
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"bad duration", site("cache soon;"),
			[]string{f + `4:7: cache: expected a duration like 10m, on or off, got "soon"`}},
		{"zero duration", site("cache 0s;"),
			[]string{f + `4:7: cache: must be greater than 0 ("cache on;" follows the response headers alone)`}},
		{"two arguments", site("cache 10m on;"), []string{f + `4:1: "cache" takes 1 argument, got 2`}},
		{"cache twice", site("cache 1m;\ncache 2m;"), []string{f + `5:1: "cache" is already set in this block at /t/main.conf:4:1`}},
		{"route cache block with an argument", site("cache 1m { valid 1m; }"),
			[]string{f + `4:1: "cache" takes no arguments, got 1`}},
		{"route cache line without argument", site("cache;"), []string{f + `4:1: "cache" takes 1 argument, got 0`}},
		{"cache line and block", site("cache 1m;\ncache { }"),
			[]string{f + `5:1: "cache" is already set in this block at /t/main.conf:4:1`}},
		{"bad valid", site("cache { valid soon; }"), []string{f + `4:15: valid: expected a duration like 30s or 5m, got "soon"`}},
		{"zero valid", site("cache {\n    valid 0;\n}"), []string{f + `5:11: valid: must be greater than 0`}},
		{"bad stale window", site("cache { stale_if_error -1s; stale_while_revalidate 1x; }"),
			[]string{f + `4:24: stale_if_error: expected a duration like 30s or 5m, got "-1s"`,
				f + `4:52: stale_while_revalidate: expected a duration like 30s or 5m, got "1x"`}},
		{"bad ignore flag", site("location /x/ { cache { ignore_client_cache_control yes; } }"),
			[]string{f + `4:52: ignore_client_cache_control: expected on or off, got "yes"`}},
		{"unknown inner directive", site("cache { valid 1m; lifetime 5m; }"),
			[]string{f + `4:19: unknown directive "lifetime"`}},
		{"store directive in a route block", site("cache { max_size 1m; }"),
			[]string{f + `4:9: "max_size" is not allowed in site or location cache; allowed in: cache`}},
		{"policy directive outside the block", site("valid 1m;"),
			[]string{f + `4:1: "valid" is not allowed in site; allowed in: site or location cache`}},
		{"policy directive in the store", top("valid 1m;"),
			[]string{f + `2:1: "valid" is not allowed in cache; allowed in: site or location cache`}},
		{"valid twice", site("cache { valid 1m; valid 2m; }"),
			[]string{f + `4:19: "valid" is already set in this block at /t/main.conf:4:9`}},
		{"bad key in the block", site(`cache { key "$host$nonsense"; }`),
			[]string{f + `4:13: key: cache key "$host$nonsense": unknown variable $nonsense`}},
		{"cache_key and key", site("cache_key $host;\ncache { key $uri; }"),
			[]string{f + `5:9: "key" conflicts with "cache_key" at /t/main.conf:4:11; the key is set once per block`}},
		{"key and cache_key", site("location /x/ {\n    cache { key $uri; }\n    cache_key $host;\n}"),
			[]string{f + `6:5: "cache_key" conflicts with "key" at /t/main.conf:5:17; the key is set once per block`}},
		{"site key used by a location's cache block", site("cache_key $host$uri;\nlocation /x/ { cache { valid 1m; } }"), nil},
		{"bad key variable", site("cache 1m;\ncache_key \"$host$nonsense\";"),
			[]string{f + `5:11: cache_key: cache key "$host$nonsense": unknown variable $nonsense`}},
		{"key without cache", site("cache_key $host$uri;"),
			[]string{f + `4:11: "cache_key" has no effect without "cache" in this site or a location taking the key from it`}},
		{"location key without cache", site("location /x/ { cache_key $host$uri; }"),
			[]string{f + `4:26: "cache_key" has no effect without "cache" in this location or inherited from its site`}},
		{"location key with cache off", site("cache 1m;\nlocation /x/ { cache off; cache_key $host; }"),
			[]string{f + `5:37: "cache_key" has no effect without "cache" in this location or inherited from its site`}},
		{"site key every user overrides is unused", site("cache_key $host;\nlocation /x/ { cache 1m; cache_key $uri; }"),
			[]string{f + `4:11: "cache_key" has no effect without "cache" in this site or a location taking the key from it`}},
		{"site key used by a caching location", site("cache_key $host$uri;\nlocation /x/ { cache 1m; }"), nil},
		{"a bad cache line is not also a missing one", site("cache forever;\ncache_key $host;"),
			[]string{f + `4:7: cache: expected a duration like 10m, on or off, got "forever"`}},
		{"purge handler in a site", site("cache_purge;"),
			[]string{f + `4:1: "cache_purge" is not allowed in site; allowed in: location (give it a location of its own, e.g. location = /_tandem/purge { cache_purge; })`}},
		{"purge handler with another handler", site("location /p { proxy http://127.0.0.1:9; cache_purge; }"),
			[]string{f + `4:41: "cache_purge" conflicts with "proxy" at /t/main.conf:4:15; a block has one handler`}},

		{"store without block", "cache;\nsite a { listen 80; root /www; }",
			[]string{f + `1:1: "cache" needs a { ... } block`}},
		{"store with an argument", "cache 10m;\nsite a { listen 80; root /www; }",
			[]string{f + `1:1: "cache" takes no arguments, got 1`, f + `1:1: "cache" needs a { ... } block`}},
		{"store directive in a site", site("max_size 1m;"),
			[]string{f + `4:1: "max_size" is not allowed in site; allowed in: cache`}},
		{"policy directive in the store", top("cache_key $host;"),
			[]string{f + `2:1: "cache_key" is not allowed in cache; allowed in: site, location`}},
		{"zero max_size", top("max_size 0;"), []string{f + `2:10: max_size: must be greater than 0`}},
		{"bad max_size", top("max_size lots;"), []string{f + `2:10: max_size: expected a size like 512k or 1m, got "lots"`}},
		{"entry above max_size", top("max_size 1m;\nmax_entry_size 2m;"),
			[]string{f + `3:1: max_entry_size 2097152 is larger than max_size 1048576`}},
		{"entry above the default max_size", top("max_entry_size 128m;"),
			[]string{f + `2:1: max_entry_size 134217728 is larger than max_size 67108864`}},
		{"disk without size", top("disk /var/cache/tandem;"), []string{f + `2:1: "disk" takes 2 arguments, got 1`}},
		{"disk zero size", top("disk /var/cache/tandem 0;"), []string{f + `2:24: disk: must be greater than 0`}},
		{"zero lock_timeout", top("lock_timeout 0s;"), []string{f + `2:14: lock_timeout: must be greater than 0`}},
		{"purge allow without token", top("purge allow 10.0.0.0/8;"),
			[]string{f + `2:7: purge: expected a token first, as in "purge s3cret allow 10.0.0.0/8;", got "allow"`}},
		{"purge networks without allow", top("purge s3cret 10.0.0.0/8;"),
			[]string{f + `2:14: purge: expected "allow" after the token, got "10.0.0.0/8"`}},
		{"purge allow without networks", top("purge s3cret allow;"),
			[]string{f + `2:14: purge: "allow" needs at least one network`}},
		{"purge bad network", top("purge s3cret allow 10.0.0.0/33;"),
			[]string{f + `2:20: purge: expected a CIDR like 10.0.0.0/8 or an IP address, got "10.0.0.0/33"`}},
		{"store twice", "cache { }\ncache { }\nsite a { listen 80; root /www; }",
			[]string{f + `2:1: "cache" is already set in this block at /t/main.conf:1:1`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want...) })
	}
}
