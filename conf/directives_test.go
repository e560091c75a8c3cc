package conf

import (
	"reflect"
	"testing"
	"time"
)

// TestMainDirectives_Good pins how each top-level directive lands in the
// model.
func TestMainDirectives_Good(t *testing.T) {
	cfg := mustParse(t, `
pid_file run/t.pid;
error_log /var/log/tandem.err debug;
access_log logs/access.log json;
shutdown_timeout 5s;
header_timeout 1m30s;
body_timeout 2m;
idle_timeout 500ms;
write_timeout 0;
max_header_size 16k;
client_max_body_size 0;
max_connections 512;
`)
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("PIDFile", cfg.PIDFile, "/t/run/t.pid")
	check("ErrorLog", cfg.ErrorLog.Path+" "+cfg.ErrorLog.Level, "/var/log/tandem.err debug")
	check("AccessLog", cfg.AccessLog.Path+" "+cfg.AccessLog.Format, "/t/logs/access.log json")
	check("AccessLog.Set", cfg.AccessLog.Set, true)
	check("ShutdownTimeout", cfg.ShutdownTimeout, 5*time.Second)
	check("HeaderTimeout", cfg.Limits.HeaderTimeout, 90*time.Second)
	check("BodyTimeout", cfg.Limits.BodyTimeout, 2*time.Minute)
	check("IdleTimeout", cfg.Limits.IdleTimeout, 500*time.Millisecond)
	check("WriteTimeout", cfg.Limits.WriteTimeout, time.Duration(0))
	check("MaxHeaderBytes", cfg.Limits.MaxHeaderBytes, int64(16<<10))
	check("MaxBodyBytes (explicit 0 = unlimited)", cfg.Limits.MaxBodyBytes, int64(0))
	check("MaxConnections", cfg.Limits.MaxConnections, 512)
}

// TestSiteDirectives_Good pins site and location directives in the model.
func TestSiteDirectives_Good(t *testing.T) {
	cfg := mustParse(t, `
site Example.com *.example.com _ {
    listen 8080 127.0.0.1:81 [::1]:82 *:83 localhost:84 default_server;
    listen host.internal:85;
    root www;
    index a.html b.html;
    expires max;
    autoindex on;
    follow_symlinks on;
    hidden_files allow;
    precompressed gzip;
    error_page 404 500 /err.html;
    error_page 503 @down;
    access_log off;
    client_max_body_size 5M;
    location = /exact { return 204; }
    location /r/ { redirect /new 308; }
    location /a/ { alias /www2; expires off; }
    location /t/ { try_files $uri =404; }
    location @down { return 503 "down for maintenance"; }
}`)
	s := cfg.Sites[0]
	wantListen := []Listen{
		{Addr: ":8080", Default: true}, {Addr: "127.0.0.1:81", Default: true},
		{Addr: "[::1]:82", Default: true}, {Addr: ":83", Default: true},
		{Addr: "localhost:84", Default: true}, {Addr: "host.internal:85"},
	}
	for i := range s.Listen {
		s.Listen[i].Pos = Pos{}
	}
	if !reflect.DeepEqual(s.Listen, wantListen) {
		t.Errorf("Listen = %+v\nwant %+v", s.Listen, wantListen)
	}
	if want := []string{"example.com", "*.example.com", "_"}; !reflect.DeepEqual(s.Names, want) {
		t.Errorf("Names = %v, want %v (lower-cased)", s.Names, want)
	}
	r := s.Route
	if r.Root != "/t/www" || !reflect.DeepEqual(r.Index, []string{"a.html", "b.html"}) ||
		*r.Expires != maxExpires || !*r.Autoindex || !*r.FollowSymlinks || !*r.HiddenFiles ||
		!reflect.DeepEqual(r.Precompressed, []string{"gzip"}) {
		t.Errorf("site route = %+v", r)
	}
	if want := map[int]string{404: "/err.html", 500: "/err.html", 503: "@down"}; !reflect.DeepEqual(r.ErrorPages, want) {
		t.Errorf("ErrorPages = %v, want %v", r.ErrorPages, want)
	}
	if !s.AccessLog.Off || !s.AccessLog.Set || s.MaxBodyBytes != 5<<20 {
		t.Errorf("site access log %+v, body %d", s.AccessLog, s.MaxBodyBytes)
	}
	locs := s.Locations
	if locs[0].Kind != Exact || locs[0].Path != "/exact" || locs[0].Route.Return.Code != 204 {
		t.Errorf("exact location = %+v", locs[0])
	}
	if ret := locs[1].Route.Return; ret.Code != 308 || ret.Text != "/new" {
		t.Errorf("redirect = %+v", ret)
	}
	if r := locs[2].Route; r.Alias != "/www2" || r.Root != "" || *r.Expires >= 0 {
		t.Errorf("alias location = %+v (expires off must be negative)", r)
	}
	if r := locs[3].Route; !reflect.DeepEqual(r.TryFiles, []string{"$uri", "=404"}) {
		t.Errorf("try_files = %v", r.TryFiles)
	}
	if locs[4].Kind != Named || locs[4].Route.Return.Text != "down for maintenance" {
		t.Errorf("named location = %+v", locs[4])
	}
}

// TestRedirectCodes pins redirect's optional code words.
func TestRedirectCodes(t *testing.T) {
	for arg, want := range map[string]int{"": 302, "permanent": 301, "temporary": 302, "303": 303, "307": 307} {
		cfg := mustParse(t, site("redirect https://x/ "+arg+";"))
		if got := cfg.Sites[0].Route.Return.Code; got != want {
			t.Errorf("redirect %q: code %d, want %d", arg, got, want)
		}
	}
}

// TestDirectiveErrors pins the message and position of every per-directive
// error. Site bodies start at line 4, column 1 (see site()).
func TestDirectiveErrors(t *testing.T) {
	const f = "/t/main.conf:"
	cases := []struct{ name, src, want string }{
		{"unknown with suggestion", site("rot /www;"), f + `4:1: unknown directive "rot"; did you mean "root"?`},
		{"unknown without suggestion", site("frobnicate;"), f + `4:1: unknown directive "frobnicate"`},
		{"unknown future directive", site("rate_limit on;"), f + `4:1: unknown directive "rate_limit"`},
		{"add_header bad name", site("add_header \"X Frame\" DENY;"), f + `4:12: add_header: invalid header name "X Frame": use letters, digits and !#$%&'*+-.^_` + "`" + `|~`},
		{"add_header framing", site("add_header content-length 5;"), f + `4:12: add_header: Content-Length is set by tandem itself and cannot be added`},
		{"add_header variable", site("add_header X-Host $host;"), f + `4:19: add_header: add_header values are literal: $variables are not expanded (write the value out, or set the header in the app)`},
		{"add_header bad flag", site("add_header X-A b never;"), f + `4:18: add_header: expected "always" or nothing after the value, got "never"`},
		{"auth_basic quote in realm", site(`auth_basic "a\"b";`), f + `4:12: auth_basic: the realm may not contain quotes, backslashes or line breaks`},
		{"allow bad address", site("allow 10.0.0.300;"), f + `4:7: allow: expected an IP address, a CIDR like 10.0.0.0/8, private or all, got "10.0.0.300"`},
		{"deny two args", site("deny 10.0.0.1 10.0.0.2;"), f + `4:1: "deny" takes 1 argument, got 2`},
		{"nginx listen flag", "site a.com {\nlisten 443 ssl;\nroot /www;\n}\n", f + `2:12: listen flag "ssl" is nginx's: drop it; a site with tls serves HTTPS on its listen addresses`},
		{"nginx variable", site("location / { proxy http://127.0.0.1:8000; proxy_set_header Upgrade $http_upgrade; }"),
			f + `4:68: proxy_set_header: unknown variable $http_upgrade: WebSocket upgrades pass through on their own; remove the Upgrade and Connection lines`},
		{"access_log file in location", site("location /x { access_log /tmp/x.log; }"), f + `4:15: in a location, access_log takes only off (the file and format are set for the site)`},
		{"nginx rename", site("proxy_pass http://127.0.0.1:8000;"), f + `4:1: unknown directive "proxy_pass"; did you mean "proxy"?`},
		{"nginx rename elsewhere", site("proxy_read_timeout 300s;"), f + `4:1: unknown directive "proxy_read_timeout" (nginx): tandem splits it in two: first_byte_timeout (waiting for the response head, where slow views show) and read_timeout (pauses in the body); put them next to proxy URL or in an upstream block`},
		{"nginx no counterpart", site("sendfile on;"), f + `4:1: unknown directive "sendfile" (nginx): tandem always sends files with sendfile(2); remove the line`},
		{"wrong block", site("location / { listen 80; }"), f + `4:14: "listen" is not allowed in location; allowed in: site`},
		{"main-only in site", site("pid_file x;"), f + `4:1: "pid_file" is not allowed in site; allowed in: main`},
		{"site in site", site("site b { }"), f + `4:1: "site" is not allowed in site; allowed in: main`},
		{"nested location", site("location / { location /a/ { } }"), f + `4:14: "location" is not allowed in location; allowed in: site (nested locations are not supported; move it up into the site block)`},
		{"alias in site", site("alias /www;"), f + `4:1: "alias" is not allowed in site; allowed in: location (use root at site level)`},
		{"too many args", site("location / { root /a /b; }"), f + `4:14: "root" takes 1 argument, got 2`},
		{"args to static", site("static please;"), f + `4:1: "static" takes no arguments, got 1`},
		{"too few args", site("try_files $uri;"), f + `4:1: "try_files" takes at least 2 arguments, got 1`},
		{"one or two", site("return 200 a b;"), f + `4:1: "return" takes 1 or 2 arguments, got 3`},
		{"missing block", "site a.com;", f + `1:1: "site" needs a { ... } block`},
		{"unexpected block", site("root /www2 { }"), f + `4:1: "root" does not take a { ... } block`},
		{"repeated", site("index a;\nindex b;"), f + `5:1: "index" is already set in this block at /t/main.conf:4:1`},
		{"bad duration", "header_timeout abc;", f + `1:16: header_timeout: expected a duration like 30s or 5m, got "abc"`},
		{"upper-case unit", "body_timeout 5M;", f + `1:14: body_timeout: expected a duration like 30s or 5m, got "5M"`},
		{"zero timeout", "idle_timeout 0;", f + `1:14: idle_timeout: must be greater than 0`},
		{"zero shutdown", "shutdown_timeout 0s;", f + `1:18: shutdown_timeout: must be greater than 0`},
		{"bad write timeout", "write_timeout -1;", f + `1:15: write_timeout: expected a duration like 30s or 5m, got "-1"`},
		{"bad size", "max_header_size 1t;", f + `1:17: max_header_size: expected a size like 512k or 1m, got "1t"`},
		{"zero header size", "max_header_size 0;", f + `1:17: max_header_size: must be greater than 0`},
		{"bad count", "max_connections many;", f + `1:17: max_connections: expected a whole number like 100, got "many"`},
		{"bad level", "error_log stderr loud;", f + `1:18: error_log: expected a level (debug, info, warn or error), got "loud"`},
		{"bad log format", "access_log stderr xml;", f + `1:19: access_log: expected a format (combined or json), got "xml"`},
		{"off with format", "access_log off json;", f + `1:16: access_log: a format makes no sense with off`},
		{"bad site name", "site a.com:80 { listen 80; }", f + `1:6: site name "a.com:80" must not contain a port; put the port in listen`},
		{"bad site name chars", "site a/b { listen 80; }", f + `1:6: invalid site name "a/b": want a host name like example.com, a wildcard like *.example.com, or _`},
		{"bad port", site("listen 70000;"), f + `4:8: invalid port "70000" in listen address "70000": want a number from 0 to 65535 (0 picks a free port)`},
		{"named port", site("listen :http;"), f + `4:8: invalid port "http" in listen address ":http": want a number from 0 to 65535 (0 picks a free port)`},
		{"no port", site("listen example.com;"), f + `4:8: invalid listen address "example.com" (want HOST:PORT, :PORT or PORT): missing port`},
		{"bad host", site("listen a_b:80;"), f + `4:8: invalid host "a_b" in listen address "a_b:80": want an IP address or host name`},
		{"default alone", site("listen default;"), f + `4:1: "listen" needs an address before "default"`},
		{"dup listen in site", site("listen 80;"), f + `4:8: listen address :80 is already listed in this site at /t/main.conf:2:8`},
		{"index with slash", site("index a/b.html;"), f + `4:7: index: expected a file name without "/", got "a/b.html"`},
		{"try_files bad fallback", site("try_files $uri fallback;"), f + `4:16: try_files: the last argument is the fallback: expected @name, =CODE or a URI starting with "/", got "fallback"`},
		{"try_files bad code", site("try_files $uri =99;"), f + `4:16: try_files: expected an HTTP status code between 100 and 599, got "99"`},
		{"return bad code", site("return 600;"), f + `4:8: return: expected an HTTP status code between 100 and 599, got "600"`},
		{"return redirect without url", site("return 302;"), f + `4:1: "return 302" needs a URL to redirect to`},
		{"redirect bad code", site("redirect /x 200;"), f + `4:13: redirect: expected 301, 302, 303, 307, 308, permanent or temporary, got "200"`},
		{"two handlers", site("static;\nreturn 404;"), f + `5:1: "return" conflicts with "static" at /t/main.conf:4:1; a block has one handler`},
		{"return and redirect", site("return 404;\nredirect /x;"), f + `5:1: "redirect" conflicts with "return" at /t/main.conf:4:1; a block has one handler`},
		{"bad expires", site("expires soon;"), f + `4:9: expires: expected a duration like 30d, off or max, got "soon"`},
		{"bad autoindex", site("autoindex yes;"), f + `4:11: autoindex: expected on or off, got "yes"`},
		{"bad follow_symlinks", site("follow_symlinks 1;"), f + `4:17: follow_symlinks: expected on or off, got "1"`},
		{"bad hidden_files", site("hidden_files on;"), f + `4:14: hidden_files: expected deny or allow, got "on"`},
		{"bad encoding", site("precompressed gzip xz;"), f + `4:20: precompressed: unknown encoding "xz"; expected zstd, br or gzip`},
		{"dup encoding", site("precompressed br br;"), f + `4:18: precompressed: encoding "br" is listed twice`},
		{"off plus encoding", site("precompressed off gzip;"), f + `4:19: precompressed: "off" must be the only argument`},
		{"bad error_page code", site("error_page 200 /x;"), f + `4:12: error_page: expected an HTTP status code between 300 and 599, got "200"`},
		{"bad error_page target", site("error_page 404 x.html;"), f + `4:16: error_page: expected a URI starting with "/", a URL, or @name, got "x.html"`},
		{"dup error_page", site("error_page 404 /a;\nerror_page 404 /b;"), f + `5:12: error_page for 404 is already set at /t/main.conf:4:12`},
		{"bad body size", site("client_max_body_size -1;"), f + `4:22: client_max_body_size: expected a size like 512k or 1m, got "-1"`},
		{"location no slash", site("location foo { }"), f + `4:10: location path "foo" must start with "/" (or "@" for a named location, "~" for a regular expression)`},
		{"location unknown modifier", site("location ~~ /x { }"), f + `4:10: location modifier "~~" is not supported; use "=", "^~", "~" or "~*"`},
		{"location bad regex", site("location ~ a(b { }"), f + `4:12: invalid regular expression "a(b": missing closing ): ` + "`a(b`" + ` (RE2 syntax: no lookaround or backreferences)`},
		{"location lookahead", site("location ~* ^/(?!api) { }"), f + `4:13: invalid regular expression "^/(?!api)": invalid or unsupported Perl syntax: ` + "`(?!`" + ` (RE2 syntax: no lookaround or backreferences)`},
		{"regex location alias", site("location ~ \\.png$ { alias /www; }"), f + `4:27: alias is not supported in a regex location (there is no prefix to replace); use root`},
		{"same prefix with ^~", site("location /x { }\nlocation ^~ /x { }"), f + `5:1: location "/x" is already defined in this site at ` + f + `4:1`},
		{"location empty name", site("location @ { }"), f + `4:10: named location needs a name after "@"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want) })
	}
}

// TestValidationErrors pins the cross-directive checks, each with the
// position of the offending word and a pointer to the first definition.
func TestValidationErrors(t *testing.T) {
	const f = "/t/main.conf:"
	cases := []struct {
		name, src string
		want      []string
	}{
		{"no listen", "site a.com { root /www; }", []string{f + `1:1: site "a.com" has no listen directive; add e.g. "listen 80;"`}},
		{"bad listen is not also missing", "site a.com { listen 70000; }", []string{f + `1:21: invalid port "70000" in listen address "70000": want a number from 0 to 65535 (0 picks a free port)`}},
		{"dup name same addr", "site a.com { listen 127.0.0.1:8080; }\nsite b.com A.com { listen 127.0.0.1:8080; }",
			[]string{f + `2:12: site name "a.com" on 127.0.0.1:8080 is already used at /t/main.conf:1:6`}},
		{"same name other addr is fine", "site a.com { listen 8080; }\nsite a.com { listen 8081; }", nil},
		{"two defaults", "site a { listen 80 default; }\nsite b { listen 80 default; }",
			[]string{f + `2:17: a default site for :80 is already set at /t/main.conf:1:17`}},
		{"missing root", site("location / { root /nope; }"),
			[]string{f + `4:19: root "/nope": directory does not exist`}},
		{"missing alias", site("location /a/ { alias /nope; }"),
			[]string{f + `4:22: alias "/nope": directory does not exist`}},
		{"relative root", "site a { listen 80; root www; }", nil},
		{"dup location", site("location /a/ { }\nlocation /a/ { }"),
			[]string{f + `5:1: location "/a/" is already defined in this site at /t/main.conf:4:1`}},
		{"exact and prefix differ", site("location = /a { }\nlocation /a { }"), nil},
		{"dup exact", site("location = /a { }\nlocation = /a { }"),
			[]string{f + `5:1: location "= /a" is already defined in this site at /t/main.conf:4:1`}},
		{"root and alias", site("location /a/ { root /www; alias /www2; }"),
			[]string{f + `4:33: a location cannot have both root (at /t/main.conf:4:21) and alias`}},
		{"try_files missing name", site("try_files $uri @app;"),
			[]string{f + `4:16: try_files fallback "@app" is not a named location in this site`}},
		{"try_files name in other site", site("try_files $uri @app;") + "site b { listen 80; location @app { return 404; } }",
			[]string{f + `4:16: try_files fallback "@app" is not a named location in this site`}},
		{"error_page missing name", site("error_page 500 502 @oops;"),
			[]string{f + `4:20: error_page target "@oops" is not a named location in this site`}},
		{"static without root", "site a { listen 80; static; }",
			[]string{f + `1:21: "static" needs a root or alias to serve files from`}},
		{"try_files without root", "site a { listen 80; location / { try_files $uri =404; } }",
			[]string{f + `1:34: "try_files" needs a root or alias to look for files in`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want...) })
	}
}

// TestErrorsCollected: a bad directive does not stop the load; every error
// in the file is reported, in file order.
func TestErrorsCollected(t *testing.T) {
	wantErrors(t, "rot x;\nsite a { listen 80; autoindex yes; }\nheader_timeout x;",
		`/t/main.conf:1:1: unknown directive "rot"; did you mean "root"?`,
		`/t/main.conf:2:31: autoindex: expected on or off, got "yes"`,
		`/t/main.conf:3:16: header_timeout: expected a duration like 30s or 5m, got "x"`,
	)
}

// The nginx hints point at directives that exist, and never shadow one.
func TestNginxHints_PointAtRealDirectives(t *testing.T) {
	known := map[string]bool{}
	for _, n := range directiveNames() {
		known[n] = true
	}
	for from, to := range nginxNames {
		if !known[to.name] {
			t.Errorf("nginx %q maps to %q, which is not a tandem directive", from, to.name)
		}
		if known[from] {
			t.Errorf("nginx %q is also a tandem directive; the hint would never show", from)
		}
	}
	for from := range nginxNotes {
		if known[from] {
			t.Errorf("nginx %q is also a tandem directive; the note would never show", from)
		}
		if _, dup := nginxNames[from]; dup {
			t.Errorf("nginx %q has both a rename and a note", from)
		}
	}
}
