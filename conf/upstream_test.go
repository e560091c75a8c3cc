package conf

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

// upstream wraps body in an upstream block named api whose body starts at
// line 2, column 1, with one server unless the body lists its own.
func upstream(body string) string {
	return "upstream api {\n" + body + "\n}\n"
}

// withServer is upstream() with a valid server line after body (so body
// still starts at line 2).
func withServer(body string) string {
	return upstream(body + "\nserver http://127.0.0.1:8000;")
}

// publicUpstream returns u without the fields only loading uses, for
// comparison with a literal.
func publicUpstream(u *Upstream) Upstream {
	c := *u
	c.maxFailsSet, c.tlsVerifySet, c.keepaliveSet, c.pos = false, false, false, upstreamPos{}
	return c
}

// testCA returns a self-signed CA certificate in PEM.
func testCA(t *testing.T) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestUpstreamDirectives_Good pins how every upstream directive lands in
// the model, whatever order the health directives come in.
func TestUpstreamDirectives_Good(t *testing.T) {
	cfg := mustParseFiles(t, `
upstream api {
    health_interval 10s;
    server http://10.0.0.1:8000 weight 3;
    server HTTPS://api.internal:443 backup weight 2;
    server unix:/run/api.sock backup;
    server uwsgi://[::1]:3031;
    server uwsgi+unix:/run/uwsgi.sock;
    balance cookie session_id;
    max_fails 0;
    fail_timeout 30s;
    fail_status 502 503;
    health_uri /healthz?full=1;
    health_timeout 1s;
    health_status 204;
    health_passes 2;
    health_fails 3;
    connect_timeout 1s;
    first_byte_timeout 2m;
    read_timeout 5m;
    retry_status 502 504;
    tls_verify off;
    tls_ca certs/ca.pem;
    keepalive 0;
}`, map[string]string{"/t/certs/ca.pem": testCA(t)})
	if len(cfg.Upstreams) != 1 {
		t.Fatalf("got %d upstreams, want 1", len(cfg.Upstreams))
	}
	at := func(line, col int) Pos { return Pos{File: "/t/main.conf", Line: line, Col: col} }
	want := Upstream{
		Pos: at(2, 1), Name: "api",
		Servers: []UpstreamServer{
			{Pos: at(4, 12), URL: "http://10.0.0.1:8000", Weight: 3},
			{Pos: at(5, 12), URL: "https://api.internal:443", Weight: 2, Backup: true},
			{Pos: at(6, 12), URL: "unix:/run/api.sock", Weight: 1, Backup: true},
			{Pos: at(7, 12), URL: "uwsgi://[::1]:3031", Weight: 1},
			{Pos: at(8, 12), URL: "uwsgi+unix:/run/uwsgi.sock", Weight: 1},
		},
		Balance: "cookie", BalanceKey: "session_id",
		MaxFails: 0, FailTimeout: 30 * time.Second, FailStatus: []int{502, 503},
		Health: &HealthCheck{URI: "/healthz?full=1", Interval: 10 * time.Second, Timeout: time.Second,
			Status: 204, Passes: 2, Fails: 3},
		ConnectTimeout: time.Second, FirstByteTimeout: 2 * time.Minute, ReadTimeout: 5 * time.Minute,
		RetryStatus: []int{502, 504}, TLSVerify: false, TLSCA: "/t/certs/ca.pem", Keepalive: 0,
	}
	if got := publicUpstream(cfg.Upstreams[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("upstream =\n  %+v\nwant\n  %+v", got, want)
	}
}

// TestUpstreamBalance pins every balance spelling.
func TestUpstreamBalance(t *testing.T) {
	for _, c := range []struct{ arg, policy, key string }{
		{"round_robin", "round_robin", ""},
		{"least_conn", "least_conn", ""},
		{"random_two", "random_two", ""},
		{"ip_hash", "ip_hash", ""},
		{"header X-Tenant", "header", "X-Tenant"},
		{"cookie sid", "cookie", "sid"},
	} {
		u := mustParse(t, withServer("balance "+c.arg+";")).Upstreams[0]
		if u.Balance != c.policy || u.BalanceKey != c.key {
			t.Errorf("balance %s: got %q %q, want %q %q", c.arg, u.Balance, u.BalanceKey, c.policy, c.key)
		}
	}
}

// TestUpstreamDefaults pins every upstream default documented in the
// model, for a named upstream and for the inline one of `proxy URL;`.
func TestUpstreamDefaults(t *testing.T) {
	cfg := mustParse(t, `
upstream api { server http://127.0.0.1:8000; health_uri /up; }
site a { listen 80; proxy http://127.0.0.1:9000 unix:/run/b.sock; }`)
	want := Upstream{
		Balance: "round_robin", MaxFails: 1, FailTimeout: 10 * time.Second,
		Health:         &HealthCheck{URI: "/up", Interval: 5 * time.Second, Timeout: 2 * time.Second, Status: 200, Passes: 1, Fails: 1},
		ConnectTimeout: 5 * time.Second, FirstByteTimeout: 60 * time.Second, ReadTimeout: 60 * time.Second,
		TLSVerify: true, Keepalive: 32,
	}
	named := publicUpstream(cfg.Upstreams[0])
	named.Pos, named.Name, named.Servers = Pos{}, "", nil
	if !reflect.DeepEqual(named, want) {
		t.Errorf("named upstream defaults\n  %+v\nwant\n  %+v", named, want)
	}
	if s := cfg.Upstreams[0].Servers[0]; s.Weight != 1 || s.Backup {
		t.Errorf("server defaults %+v: weight 1, not a backup", s)
	}

	p := cfg.Sites[0].Route.Proxy
	if p == nil || p.Upstream == nil {
		t.Fatalf("inline proxy not built: %+v", p)
	}
	inline := publicUpstream(p.Upstream)
	if !inline.Inline || inline.Name != "" || inline.Pos != (Pos{File: "/t/main.conf", Line: 3, Col: 21}) {
		t.Errorf("inline upstream: Inline, no name, at the proxy directive: %+v", inline)
	}
	wantServers := []UpstreamServer{
		{Pos: Pos{File: "/t/main.conf", Line: 3, Col: 27}, URL: "http://127.0.0.1:9000", Weight: 1},
		{Pos: Pos{File: "/t/main.conf", Line: 3, Col: 49}, URL: "unix:/run/b.sock", Weight: 1},
	}
	if !reflect.DeepEqual(inline.Servers, wantServers) {
		t.Errorf("inline servers %+v\nwant %+v", inline.Servers, wantServers)
	}
	inline.Pos, inline.Inline, inline.Servers = Pos{}, false, nil
	want.Health = nil // no health_uri: no active checks
	if !reflect.DeepEqual(inline, want) {
		t.Errorf("inline upstream defaults\n  %+v\nwant\n  %+v", inline, want)
	}
	if !p.Buffering || p.SetHeaders != nil {
		t.Errorf("proxy defaults: buffering on, no headers: %+v", p)
	}
}

// TestProxyTargets: `proxy NAME;` resolves to the upstream block (even one
// written later), so every use shares one *Upstream; URLs are kept as
// written apart from the scheme's case.
func TestProxyTargets(t *testing.T) {
	cfg := mustParse(t, `
site a {
    listen 80;
    location /one/ { proxy api; }
    location /two/ { proxy api; }
    location /ws/ { proxy HTTP://localhost:8080 https://[2001:db8::1]:8443 uwsgi://app.internal:3031; }
}
upstream api { server unix:/run/api.sock; }`)
	api := cfg.Upstreams[0]
	locs := cfg.Sites[0].Locations
	if locs[0].Route.Proxy.Upstream != api || locs[1].Route.Proxy.Upstream != api {
		t.Errorf("proxy api must point at the upstream block: %p %p, want %p",
			locs[0].Route.Proxy.Upstream, locs[1].Route.Proxy.Upstream, api)
	}
	var urls []string
	for _, s := range locs[2].Route.Proxy.Upstream.Servers {
		urls = append(urls, s.URL)
	}
	if want := []string{"http://localhost:8080", "https://[2001:db8::1]:8443", "uwsgi://app.internal:3031"}; !slices.Equal(urls, want) {
		t.Errorf("inline URLs %v, want %v", urls, want)
	}
}

// TestUpstreamInclude: an upstream block may include its servers, and
// the no-server check sees the included ones.
func TestUpstreamInclude(t *testing.T) {
	cfg := mustParseFiles(t, "upstream api { include api.d/*.conf; }\nsite a { listen 80; proxy api; }",
		map[string]string{"/t/api.d/a.conf": "server http://10.0.0.1:80;", "/t/api.d/b.conf": "server http://10.0.0.2:80; keepalive 4;"})
	u := cfg.Upstreams[0]
	if len(u.Servers) != 2 || u.Servers[1].URL != "http://10.0.0.2:80" || u.Keepalive != 4 || u.Servers[1].Pos.File != "/t/api.d/b.conf" {
		t.Errorf("upstream from included files: %+v", u)
	}
}

// TestProxyInheritance: proxy is a handler, inherited as a unit like app;
// proxy_set_header and proxy_buffering are inherited field by field, into
// whichever proxy a location ends up with.
func TestProxyInheritance(t *testing.T) {
	cfg := mustParse(t, `
upstream api { server http://127.0.0.1:8000; }
upstream other { server http://127.0.0.1:8001; }
site a {
    listen 80;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header Host "";
    proxy http://127.0.0.1:9000;
    location /plain/ { }
    location /unbuffered/ { proxy_buffering off; }
    location /other/ { proxy other; }
    location /own-headers/ { proxy other; proxy_set_header X-Scheme $scheme; }
    location /files/ { root /www; }
    location /gone/ { return 410; }
    location @named { }
    location = /upstreams { upstream_status; }
}
site b {
    listen 81;
    root /www;
    proxy_buffering off;
    location / { try_files $uri @api; }
    location @api { proxy api; }
}`)
	a := cfg.Sites[0]
	siteHeaders := []ProxyHeader{{"X-Real-IP", "$remote_addr"}, {"Host", ""}}
	sp := a.Route.Proxy
	if sp == nil || !sp.Upstream.Inline || !reflect.DeepEqual(sp.SetHeaders, siteHeaders) || !sp.Buffering || a.Route.Static {
		t.Fatalf("site proxy %+v: inline, site headers, buffering on, not static", sp)
	}
	loc := func(i int) Route { return a.Locations[i].Route }

	plain := loc(0).Proxy
	if plain == nil || plain == sp || plain.Upstream != sp.Upstream || !reflect.DeepEqual(plain.SetHeaders, siteHeaders) || !plain.Buffering {
		t.Errorf("a location without a handler inherits a copy of the site's proxy, sharing its upstream: %+v", plain)
	}
	if p := loc(1).Proxy; p == nil || p.Upstream != sp.Upstream || p.Buffering || !reflect.DeepEqual(p.SetHeaders, siteHeaders) {
		t.Errorf("proxy_buffering off alone keeps the inherited proxy, unbuffered: %+v", p)
	}
	if p := loc(2).Proxy; p == nil || p.Upstream != cfg.Upstreams[1] || !reflect.DeepEqual(p.SetHeaders, siteHeaders) {
		t.Errorf("an own proxy takes the site's proxy_set_header lines: %+v", p)
	}
	if p := loc(3).Proxy; p == nil || !reflect.DeepEqual(p.SetHeaders, []ProxyHeader{{"X-Scheme", "$scheme"}}) {
		t.Errorf("own proxy_set_header lines replace the site's set: %+v", p)
	}
	if r := loc(4); r.Proxy != nil || !r.Static {
		t.Errorf("a location with its own root serves files: %+v", r)
	}
	if r := loc(5); r.Proxy != nil || r.Return == nil {
		t.Errorf("a location with its own handler keeps it: %+v", r)
	}
	if r := loc(6); r.Proxy != nil || r.Static {
		t.Errorf("a named location never inherits a handler: %+v", r)
	}
	if r := loc(7); r.Proxy != nil || !r.UpstreamStatus {
		t.Errorf("upstream_status is a handler of its own: %+v", r)
	}

	b := cfg.Sites[1]
	if b.Route.Proxy != nil || !b.Route.Static {
		t.Errorf("proxy_buffering alone does not make a proxy: %+v", b.Route)
	}
	if r := b.Locations[0].Route; r.Proxy != nil || len(r.TryFiles) != 2 {
		t.Errorf("try_files location: %+v", r)
	}
	if p := b.Locations[1].Route.Proxy; p == nil || p.Upstream != cfg.Upstreams[0] || p.Buffering || p.SetHeaders != nil {
		t.Errorf("named proxy location: site's buffering off, no headers: %+v", p)
	}
}

// TestTrustedProxies: `private` expands, bare addresses are single hosts,
// prefixes are masked, lines add up, and a site's list replaces the
// global one.
func TestTrustedProxies(t *testing.T) {
	cfg := mustParse(t, `
trusted_proxies 10.1.2.3/8 192.0.2.7;
trusted_proxies 2001:db8::/32;
site a { listen 80; root /www; }
site b { listen 81; root /www; trusted_proxies private; }`)
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	global := pfx("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32")
	if !slices.Equal(cfg.TrustedProxies, global) {
		t.Errorf("global %v, want %v", cfg.TrustedProxies, global)
	}
	if !slices.Equal(cfg.Sites[0].TrustedProxies, global) {
		t.Errorf("site a inherits the global list: %v", cfg.Sites[0].TrustedProxies)
	}
	private := pfx("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
	if !slices.Equal(cfg.Sites[1].TrustedProxies, private) {
		t.Errorf("site b's own list replaces the global one: %v, want %v", cfg.Sites[1].TrustedProxies, private)
	}
	if got := mustParse(t, "site a { listen 80; root /www; }").Sites[0].TrustedProxies; got != nil {
		t.Errorf("default: no trusted proxies, got %v", got)
	}
}

// TestProxyHeaderValues pins which variables proxy_set_header accepts.
func TestProxyHeaderValues(t *testing.T) {
	for _, v := range []string{"$host", "$remote_addr", "$scheme://$host$request_uri", "$uri?$args", "$query_string",
		"", "literal", "cost: 5$", "$1", "a$-b"} {
		mustParse(t, site("proxy http://a:1;\nproxy_set_header X-V \""+v+"\";"))
	}
}

// TestUpstreamErrors pins the message and position of every upstream and
// proxy error. Upstream bodies start at line 2, site bodies at line 4.
func TestUpstreamErrors(t *testing.T) {
	const f = "/t/main.conf:"
	api := "upstream api { server http://127.0.0.1:8000; }\n" // line 1; site() then starts at line 2
	cases := []struct {
		name, src string
		want      []string
	}{
		// upstream blocks
		{"no server", "upstream api { }", []string{f + `1:1: upstream "api" has no server; add e.g. "server http://127.0.0.1:8000;"`}},
		{"bad server is not also missing", upstream("server ftp://x:1;"),
			[]string{f + `2:8: server: unknown scheme "ftp" in "ftp://x:1"; expected http, https, unix, uwsgi or uwsgi+unix`}},
		{"all backup", upstream("server http://a:1 backup;\nserver http://b:1 backup;"),
			[]string{f + `2:19: upstream "api": every server is a backup; at least one must not be`}},
		{"all backup but one broken", upstream("server http://a:1 backup;\nserver http://b:1 weight 0;"),
			[]string{f + `3:26: server: must be at least 1`}},
		{"dup upstream", api + "upstream api { server http://127.0.0.1:9000; }",
			[]string{f + `2:10: upstream "api" is already defined at /t/main.conf:1:10`}},
		{"bad upstream name", "upstream a/b { server http://a:1; }",
			[]string{f + `1:10: invalid upstream name "a/b": use letters, digits, "_", "-" and "."`}},
		{"upstream without block", "upstream api;", []string{f + `1:1: "upstream" needs a { ... } block`}},
		{"upstream in site", site("upstream api { }"), []string{f + `4:1: "upstream" is not allowed in site; allowed in: main`}},
		{"server at top level", "server { listen 80; }",
			[]string{f + `1:1: "server" is not allowed in main; allowed in: upstream (a virtual host is a site NAME { } block)`}},
		{"site directive in upstream", withServer("root /www;"),
			[]string{f + `2:1: "root" is not allowed in upstream; allowed in: site, location`}},
		{"dup server", upstream("server http://a:1;\nserver http://a:1 backup;"),
			[]string{f + `3:8: server http://a:1 is already listed in this upstream at /t/main.conf:2:8`}},
		{"weight zero", upstream("server http://a:1 weight 0;"), []string{f + `2:26: server: must be at least 1`}},
		{"weight no value", upstream("server http://a:1 weight;"), []string{f + `2:19: server: "weight" needs a value after it`}},
		{"weight twice", upstream("server http://a:1 weight 2 weight;"), []string{f + `2:28: server: "weight" is given twice`}},
		{"backup twice", upstream("server http://a:1 backup backup;"), []string{f + `2:26: server: "backup" is given twice`}},
		{"server option", upstream("server http://a:1 down;"), []string{f + `2:19: server: expected "weight N" or "backup", got "down"`}},
		{"server name", upstream("server backend;"),
			[]string{f + `2:8: server: expected a URL like http://HOST:PORT or unix:/PATH, got "backend"`}},
		{"balance unknown", withServer("balance hash;"),
			[]string{f + `2:9: balance: expected round_robin, least_conn, random_two, ip_hash, header NAME or cookie NAME, got "hash"`}},
		{"balance header without name", withServer("balance header;"),
			[]string{f + `2:9: balance: "header" needs a NAME after it (the header whose value picks the server)`}},
		{"balance cookie without name", withServer("balance cookie;"),
			[]string{f + `2:9: balance: "cookie" needs a NAME after it (the cookie whose value picks the server)`}},
		{"balance bad header", withServer("balance header \"X Y\";"), []string{f + `2:16: balance: invalid header name "X Y"`}},
		{"balance policy with name", withServer("balance least_conn x;"), []string{f + `2:20: balance: "least_conn" takes no NAME`}},
		{"max_fails bad", withServer("max_fails -1;"), []string{f + `2:11: max_fails: expected a whole number like 100, got "-1"`}},
		{"fail_timeout zero", withServer("fail_timeout 0;"), []string{f + `2:14: fail_timeout: must be greater than 0`}},
		{"fail_status range", withServer("fail_status 502 600;"),
			[]string{f + `2:17: fail_status: expected an HTTP status code between 100 and 599, got "600"`}},
		{"fail_status dup", withServer("fail_status 502 502;"), []string{f + `2:17: fail_status: status 502 is listed twice`}},
		{"retry_status range", withServer("retry_status 99;"),
			[]string{f + `2:14: retry_status: expected an HTTP status code between 100 and 599, got "99"`}},
		{"health_uri relative", withServer("health_uri healthz;"),
			[]string{f + `2:12: health_uri: expected a path starting with "/", got "healthz"`}},
		{"health_uri space", withServer("health_uri \"/a b\";"),
			[]string{f + `2:12: health_uri: the path must not contain spaces or control characters, got "/a b"`}},
		{"health without uri", withServer("health_interval 1s;\nhealth_fails 2;"),
			[]string{
				f + `2:1: "health_interval" has no effect without health_uri (active checks run only when health_uri is set)`,
				f + `3:1: "health_fails" has no effect without health_uri (active checks run only when health_uri is set)`,
			}},
		{"health_status range", withServer("health_uri /;\nhealth_status 700;"),
			[]string{f + `3:15: health_status: expected an HTTP status code between 100 and 599, got "700"`}},
		{"health_passes zero", withServer("health_uri /;\nhealth_passes 0;"), []string{f + `3:15: health_passes: must be at least 1`}},
		{"health_timeout zero", withServer("health_uri /;\nhealth_timeout 0;"), []string{f + `3:16: health_timeout: must be greater than 0`}},
		{"connect_timeout bad", withServer("connect_timeout 5S;"),
			[]string{f + `2:17: connect_timeout: expected a duration like 30s or 5m, got "5S"`}},
		{"read_timeout zero", withServer("read_timeout 0;"), []string{f + `2:14: read_timeout: must be greater than 0`}},
		{"first_byte_timeout zero", withServer("first_byte_timeout 0;"), []string{f + `2:20: first_byte_timeout: must be greater than 0`}},
		{"tls_verify bad", withServer("tls_verify yes;"), []string{f + `2:12: tls_verify: expected on or off, got "yes"`}},
		{"tls_ca missing", withServer("tls_ca /etc/nope.pem;"), []string{f + `2:8: tls_ca "/etc/nope.pem": file does not exist`}},
		{"tls_ca relative missing", withServer("tls_ca ca.pem;"), []string{f + `2:8: tls_ca "/t/ca.pem": file does not exist`}},
		{"keepalive bad", withServer("keepalive lots;"), []string{f + `2:11: keepalive: expected a whole number like 100, got "lots"`}},
		{"repeated in upstream", withServer("keepalive 1;\nkeepalive 2;"), []string{f + `3:1: "keepalive" is already set in this block at /t/main.conf:2:1`}},

		// proxy targets
		{"unknown upstream", api + site("proxy apu;"), []string{f + `5:7: no upstream named "apu"; did you mean "api"?`}},
		{"unknown upstream, none close", api + site("proxy backend;"),
			[]string{f + `5:7: no upstream named "backend"; define it at top level with upstream backend { server URL; }`}},
		{"proxy to an app", "app blog { wsgi b:a; }\n" + site("proxy blog;"),
			[]string{f + `5:7: no upstream named "blog"; "blog" is an app: use "app blog;"`}},
		{"name mixed with URLs", api + site("proxy http://a:1 api;"),
			[]string{f + `5:18: proxy: upstream name "api" cannot be mixed with other targets; give one upstream name, or URLs only`}},
		{"two names", api + site("proxy api api2;"),
			[]string{
				f + `5:7: proxy: upstream name "api" cannot be mixed with other targets; give one upstream name, or URLs only`,
				f + `5:11: proxy: upstream name "api2" cannot be mixed with other targets; give one upstream name, or URLs only`,
			}},
		{"bad name", site("proxy a/b;"), []string{f + `4:7: proxy: expected an upstream name or a URL like http://HOST:PORT, got "a/b"`}},
		{"unknown scheme", site("proxy ftp://a:21;"),
			[]string{f + `4:7: proxy: unknown scheme "ftp" in "ftp://a:21"; expected http, https, unix, uwsgi or uwsgi+unix`}},
		{"no scheme", site("proxy localhost:8000;"),
			[]string{f + `4:7: proxy: expected a URL like http://HOST:PORT or unix:/PATH, got "localhost:8000"`}},
		{"http without slashes", site("proxy http:a:1;"), []string{f + `4:7: proxy: expected http://HOST:PORT, got "http:a:1"`}},
		{"path", site("proxy http://127.0.0.1:8000/api;"),
			[]string{f + `4:7: proxy: proxy URLs take no path or query (the request's own are sent), got "http://127.0.0.1:8000/api"`}},
		{"trailing slash", site("proxy http://127.0.0.1:8000/;"),
			[]string{f + `4:7: proxy: proxy URLs take no path or query (the request's own are sent), got "http://127.0.0.1:8000/"`}},
		{"query", site("proxy https://a:1?x=1;"),
			[]string{f + `4:7: proxy: proxy URLs take no path or query (the request's own are sent), got "https://a:1?x=1"`}},
		{"user info", site("proxy http://u:p@a:1;"), []string{f + `4:7: proxy: proxy URLs take no user:password, got "http://u:p@a:1"`}},
		{"missing port", site("proxy http://backend.internal;"),
			[]string{f + `4:7: proxy: expected HOST:PORT in "http://backend.internal" (the port is required)`}},
		{"missing host", site("proxy uwsgi://:3031;"), []string{f + `4:7: proxy: missing host in "uwsgi://:3031"`}},
		{"bad host", site("proxy http://a_b:1;"), []string{f + `4:7: proxy: invalid host "a_b" in "http://a_b:1": want an IP address or host name`}},
		{"port zero", site("proxy http://a:0;"), []string{f + `4:7: proxy: invalid port "0" in "http://a:0": want a number from 1 to 65535`}},
		{"port too big", site("proxy http://a:65536;"), []string{f + `4:7: proxy: invalid port "65536" in "http://a:65536": want a number from 1 to 65535`}},
		{"port sign", site("proxy http://a:+80;"), []string{f + `4:7: proxy: invalid port "+80" in "http://a:+80": want a number from 1 to 65535`}},
		{"relative unix", site("proxy unix:run/app.sock;"), []string{f + `4:7: proxy: unix socket path must be absolute, got "run/app.sock"`}},
		{"unix with slashes", site("proxy uwsgi+unix:///run/app.sock;"),
			[]string{f + `4:7: proxy: expected uwsgi+unix:/PATH with a single "/", got "uwsgi+unix:///run/app.sock"`}},
		{"empty unix", site("proxy unix:;"), []string{f + `4:7: proxy: unix socket path must be absolute, got ""`}},
		{"long unix", site("proxy unix:/" + longName + ";"),
			[]string{f + `4:7: proxy: unix socket path is longer than 107 bytes: "/` + longName + `"`}},
		{"dup inline URL", site("proxy http://a:1 HTTP://a:1;"), []string{f + `4:18: proxy: server http://a:1 is listed twice`}},
		{"nginx proxy_pass", site("proxy_pass http://a:1;"), []string{f + `4:1: unknown directive "proxy_pass"; did you mean "proxy"?`}},
		{"nginx set_real_ip_from", "set_real_ip_from 10.0.0.0/8;", []string{f + `1:1: unknown directive "set_real_ip_from"; did you mean "trusted_proxies"?`}},
		{"proxy no args", site("proxy;"), []string{f + `4:1: "proxy" takes at least 1 argument, got 0`}},
		{"proxy twice", site("proxy http://a:1;\nproxy http://b:1;"), []string{f + `5:1: "proxy" is already set in this block at /t/main.conf:4:1`}},

		// one handler per block
		{"proxy and static", site("static;\nproxy http://a:1;"),
			[]string{f + `5:1: "proxy" conflicts with "static" at /t/main.conf:4:1; a block has one handler`}},
		{"app and proxy", "app blog { wsgi b:a; }\n" + site("location / { app blog; proxy http://a:1; }"),
			[]string{f + `5:24: "proxy" conflicts with "app" at /t/main.conf:5:14; a block has one handler`}},
		{"proxy and return", site("location / { proxy http://a:1; return 404; }"),
			[]string{f + `4:32: "return" conflicts with "proxy" at /t/main.conf:4:14; a block has one handler`}},
		{"proxy and try_files", site("location / { proxy http://a:1; try_files $uri =404; }"),
			[]string{f + `4:32: "try_files" conflicts with "proxy" at /t/main.conf:4:14; a block has one handler`}},
		{"upstream_status and proxy", site("location /s { upstream_status; proxy http://a:1; }"),
			[]string{f + `4:32: "proxy" conflicts with "upstream_status" at /t/main.conf:4:15; a block has one handler`}},
		{"upstream_status in site", site("upstream_status;"),
			[]string{f + `4:1: "upstream_status" is not allowed in site; allowed in: location (give it a location of its own, e.g. location = /upstreams { upstream_status; })`}},
		{"upstream_status args", site("location /s { upstream_status all; }"),
			[]string{f + `4:15: "upstream_status" takes no arguments, got 1`}},

		// proxy_set_header and proxy_buffering
		{"bad header name", site("proxy_set_header \"X Y\" 1;"),
			[]string{f + `4:18: proxy_set_header: invalid header name "X Y": use letters, digits and !#$%&'*+-.^_` + "`" + `|~`}},
		{"dup header", site("proxy_set_header X-A 1;\nproxy_set_header x-a 2;"),
			[]string{f + `5:18: proxy_set_header x-a is already set in this block at /t/main.conf:4:18`}},
		{"header line break", site("proxy_set_header X-A \"a\\nb\";"),
			[]string{f + `4:22: proxy_set_header: header values must not contain line breaks or NUL`}},
		{"unknown variable", site("proxy_set_header X-Request-Id $request_id;"),
			[]string{f + `4:31: proxy_set_header: unknown variable $request_id; available: $host, $remote_addr, $scheme, $request_uri, $uri, $args`}},
		{"timeout without proxy", site("location /x { read_timeout 5m; return 200; }"),
			[]string{f + `4:15: read_timeout applies to a proxy: put it next to proxy URL in this block, or in an upstream block`}},
		{"timeout for a named upstream", "upstream api { server http://127.0.0.1:1; }\n" + site("location /x { proxy api; read_timeout 5m; }"),
			[]string{f + `5:26: read_timeout for upstream api goes in its upstream block`}},
		{"nginx-only variable", site("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"),
			[]string{f + `4:34: proxy_set_header: unknown variable $proxy_add_x_forwarded_for: tandem sets X-Forwarded-For itself (see trusted_proxies); remove the line`}},
		{"header one arg", site("proxy_set_header X-A;"), []string{f + `4:1: "proxy_set_header" takes 2 arguments, got 1`}},
		{"proxy_buffering bad", site("proxy_buffering yes;"), []string{f + `4:17: proxy_buffering: expected on or off, got "yes"`}},
		{"proxy_buffering in upstream", withServer("proxy_buffering off;"),
			[]string{f + `2:1: "proxy_buffering" is not allowed in upstream; allowed in: site, location`}},

		// trusted_proxies
		{"bad cidr", "trusted_proxies 10.0.0.0/33;",
			[]string{f + `1:17: trusted_proxies: expected a CIDR like 10.0.0.0/8, an IP address or private, got "10.0.0.0/33"`}},
		{"bad address", site("trusted_proxies private 10.0.0.256;"),
			[]string{f + `4:25: trusted_proxies: expected a CIDR like 10.0.0.0/8, an IP address or private, got "10.0.0.256"`}},
		{"zone", "trusted_proxies fe80::1%eth0;",
			[]string{f + `1:17: trusted_proxies: expected a CIDR like 10.0.0.0/8, an IP address or private, got "fe80::1%eth0"`}},
		{"trusted_proxies in location", site("location / { trusted_proxies private; }"),
			[]string{f + `4:14: "trusted_proxies" is not allowed in location; allowed in: main, site`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want...) })
	}
}

// longName makes a unix socket path one byte over the limit.
var longName = string(slices.Repeat([]byte("s"), maxUnixPath))

// TestTLSCA: tls_ca must hold a PEM certificate, even on an upstream
// without https servers (where it is otherwise ignored).
func TestTLSCA(t *testing.T) {
	src := withServer("tls_ca ca.pem;")
	if _, errs := parseMem(src, map[string]string{"/t/ca.pem": testCA(t)}); errs != nil {
		t.Errorf("a PEM CA on an http upstream is fine: %v", errs)
	}
	_, errs := parseMem(src, map[string]string{"/t/ca.pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"})
	want := []string{`/t/main.conf:2:8: tls_ca "/t/ca.pem": no PEM certificate in the file`}
	if got := errLines(errs); !slices.Equal(got, want) {
		t.Errorf("a key instead of a certificate: got %v, want %v", got, want)
	}
}
