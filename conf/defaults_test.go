package conf

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestDefaults pins every default documented in model.go.
func TestDefaults(t *testing.T) {
	cfg := mustParse(t, "site a { listen 80; root /www; }")
	if cfg.ErrorLog.Path != "stderr" || cfg.ErrorLog.Level != "info" {
		t.Errorf("error log %+v, want stderr info", cfg.ErrorLog)
	}
	if !cfg.AccessLog.Off || cfg.AccessLog.Set {
		t.Errorf("access log %+v, want off and not set", cfg.AccessLog)
	}
	if cfg.PIDFile != DefaultPIDFile() {
		t.Errorf("pid file %q, want %q", cfg.PIDFile, DefaultPIDFile())
	}
	want := Limits{
		HeaderTimeout: 10 * time.Second, BodyTimeout: 60 * time.Second,
		IdleTimeout: 75 * time.Second, MaxHeaderBytes: 1 << 20, MaxBodyBytes: 1 << 20,
	}
	if cfg.Limits != want {
		t.Errorf("limits %+v, want %+v", cfg.Limits, want)
	}
	if cfg.ShutdownTimeout != 30*time.Second {
		t.Errorf("shutdown timeout %v", cfg.ShutdownTimeout)
	}
	s := cfg.Sites[0]
	r := s.Route
	if !slices.Equal(r.Index, []string{"index.html"}) || !slices.Equal(r.Precompressed, []string{"zstd", "br", "gzip"}) ||
		!r.PrecompressedSet || *r.Autoindex || *r.FollowSymlinks || *r.HiddenFiles || r.Expires != nil {
		t.Errorf("site route defaults %+v", r)
	}
	if !r.Static {
		t.Error("a site with a root and no handler serves files (Static)")
	}
	if s.MaxBodyBytes != 1<<20 {
		t.Errorf("site body limit %d, want global 1m", s.MaxBodyBytes)
	}
}

// TestInheritance pins which fields a location takes from its site.
func TestInheritance(t *testing.T) {
	cfg := mustParse(t, `
client_max_body_size 3m;
access_log stderr;
site a {
    listen 80;
    root /www;
    index home.html;
    expires 1h;
    autoindex on;
    hidden_files allow;
    precompressed br;
    error_page 404 @nf;
    try_files $uri @nf;
    client_max_body_size 2m;
    location /plain/ { }
    location /own/ { autoindex off; precompressed off; error_page 500 /500.html; client_max_body_size 1k; }
    location /alias/ { alias /www2; }
    location /ret/ { return 410; }
    location @nf { }
}
site b { listen 81; return 301 https://x$request_uri; location /keep/ { } }`)
	a := cfg.Sites[0]
	loc := func(i int) Route { return a.Locations[i].Route }

	plain := loc(0)
	if plain.Root != "/www" || !slices.Equal(plain.Index, []string{"home.html"}) || *plain.Expires != time.Hour ||
		!*plain.Autoindex || !*plain.HiddenFiles || *plain.FollowSymlinks ||
		!slices.Equal(plain.Precompressed, []string{"br"}) || plain.ErrorPages[404] != "@nf" {
		t.Errorf("plain location should inherit everything: %+v", plain)
	}
	if !slices.Equal(plain.TryFiles, []string{"$uri", "@nf"}) {
		t.Errorf("a location without handler or directory inherits the site's handler: %+v", plain)
	}
	if a.Locations[0].MaxBodyBytes != 2<<20 {
		t.Errorf("location body limit %d, want site's 2m", a.Locations[0].MaxBodyBytes)
	}

	own := loc(1)
	if *own.Autoindex || len(own.Precompressed) != 0 || !own.PrecompressedSet ||
		!reflect.DeepEqual(own.ErrorPages, map[int]string{500: "/500.html"}) || a.Locations[1].MaxBodyBytes != 1024 {
		t.Errorf("own settings win, error_page replaces the site's set: %+v", own)
	}

	alias := loc(2)
	if alias.Root != "" || alias.Alias != "/www2" || !alias.Static || alias.TryFiles != nil {
		t.Errorf("alias location: no inherited root, serves its own dir, no site handler: %+v", alias)
	}
	if ret := loc(3); ret.Return == nil || ret.Static || ret.TryFiles != nil {
		t.Errorf("return location keeps only its handler: %+v", ret)
	}
	if nf := loc(4); nf.TryFiles != nil || !nf.Static || nf.Root != "/www" {
		t.Errorf("named location never inherits try_files (no loop), serves the site root: %+v", nf)
	}

	b := cfg.Sites[1]
	if keep := b.Locations[0].Route; keep.Return == nil || keep.Return.Code != 301 || keep.Static {
		t.Errorf("a location under a redirecting site redirects too: %+v", keep)
	}
	if b.Locations[0].Route.Return == b.Route.Return {
		t.Error("inherited Return must be a copy, not shared")
	}
	if b.AccessLog.Set || b.AccessLog.Path != "stderr" || a.MaxBodyBytes != 2<<20 || b.MaxBodyBytes != 3<<20 {
		t.Errorf("site b falls back to global access log and body limit: %+v %d", b.AccessLog, b.MaxBodyBytes)
	}
}

// TestQuickStart: the config-less mode is one default site with defaults.
func TestQuickStart(t *testing.T) {
	dir := t.TempDir()
	cfg, err := QuickStart(dir, "8080")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sites[0]
	if s.Names[0] != "_" || s.Listen[0] != (Listen{Addr: ":8080", Default: true}) || s.Route.Root != dir ||
		!s.Route.Static || *s.Route.HiddenFiles || s.MaxBodyBytes != 1<<20 || cfg.Limits.HeaderTimeout != 10*time.Second {
		t.Errorf("quick start config %+v / %+v", s, s.Route)
	}
	_, err = QuickStart("/nonexistent", "99999")
	want := "--listen: invalid port \"99999\" in listen address \"99999\": want a number from 0 to 65535 (0 picks a free port)\n" +
		"--root: \"/nonexistent\": directory does not exist"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
