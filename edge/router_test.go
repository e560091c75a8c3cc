package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/static"
)

// newTestServer parses config (with {{DIR}} replaced by a temp dir that
// setup may fill) and returns the edge for it, without opening sockets.
func newTestServer(t *testing.T, config string, files map[string]string) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(strings.ReplaceAll(config, "{{DIR}}", dir)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cache := static.NewCache(static.CacheConfig{})
	t.Cleanup(func() { cache.Close() })
	s, err := New(cfg, Options{FileCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// serveReq runs r through the handler of addr.
func serveReq(s *Server, addr string, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	(&listenerHandler{srv: s, addr: addr}).ServeHTTP(w, r)
	return w
}

// get runs one request through the handler of addr.
func get(s *Server, addr, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
		} else {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	(&listenerHandler{srv: s, addr: addr}).ServeHTTP(w, r)
	return w
}

// Site choice follows nginx: exact name, then the longest wildcard, then
// the address's default; ports and case in Host do not matter.
func TestRouter_HostMatching(t *testing.T) {
	s, _ := newTestServer(t, `
site first.test { listen 127.0.0.1:1; return 200 "first"; }
site exact.test { listen 127.0.0.1:1; return 200 "exact"; }
site *.test { listen 127.0.0.1:1; return 200 "wild"; }
site *.deep.test { listen 127.0.0.1:1; return 200 "deeper-wild"; }
site other { listen 127.0.0.1:2; listen 127.0.0.1:1 default; return 200 "default"; }
`, nil)
	for _, tc := range []struct{ addr, host, want string }{
		{"127.0.0.1:1", "exact.test", "exact"},
		{"127.0.0.1:1", "EXACT.test.", "exact"},
		{"127.0.0.1:1", "exact.test:8080", "exact"},
		{"127.0.0.1:1", "x.test", "wild"},
		{"127.0.0.1:1", "a.deep.test", "deeper-wild"},
		{"127.0.0.1:1", "test", "default"},
		{"127.0.0.1:1", "[::1]:80", "default"},
		{"127.0.0.1:2", "exact.test", "default"}, // names are per address
	} {
		w := get(s, tc.addr, "GET", "/", map[string]string{"Host": tc.host})
		if w.Body.String() != tc.want {
			t.Errorf("%s Host %q → %q, want %q", tc.addr, tc.host, w.Body.String(), tc.want)
		}
	}
}

// Locations: `=` beats every prefix, then the longest prefix wins; the
// site's own directives act as `location /`.
func TestRouter_LocationMatching(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    return 200 "site";
    location /api/ { return 200 "api"; }
    location /api/v2/ { return 200 "v2"; }
    location = /api/v2/exact { return 200 "exact"; }
}
`, nil)
	for path, want := range map[string]string{
		"/":              "site",
		"/api":           "site",
		"/api/":          "api",
		"/api/x":         "api",
		"/api/v2/y":      "v2",
		"/api/v2/exact":  "exact",
		"/api/v2/exact/": "v2",
	} {
		if got := get(s, "127.0.0.1:1", "GET", path, nil).Body.String(); got != want {
			t.Errorf("%s → %q, want %q", path, got, want)
		}
	}
}

// Regex locations follow nginx: `=` first; a `^~` longest prefix stops
// the search; else the first matching regex in config order beats the
// longest prefix; `~*` ignores case; the path matched is the decoded one
// without the query.
func TestRouter_RegexLocations(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    return 200 "site";
    location /img/ { return 200 "img prefix"; }
    location ^~ /assets/ { return 200 "assets"; }
    location = /img/exact.png { return 200 "exact"; }
    location ~* \.(png|jpe?g)$ { return 200 "image"; }
    location ~ "^/id/\d{3}$" { return 200 "id3"; }
    location ~ ^/id/ { return 200 "id"; }
    location ~ /\. { return 200 "hidden"; }
}
`, nil)
	for path, want := range map[string]string{
		"/":              "site",
		"/img/":          "img prefix",
		"/img/a.png":     "image",
		"/img/A.JPG":     "image",
		"/img/a.png?v=1": "image",
		"/img/a%2Epng":   "image",
		"/img/exact.png": "exact",
		"/assets/a.png":  "assets",
		"/id/123":        "id3",
		"/id/1234":       "id",
		"/x/.git/config": "hidden",
		"/img/png":       "img prefix",
		"/other.png.txt": "site",
	} {
		if got := get(s, "127.0.0.1:1", "GET", path, nil).Body.String(); got != want {
			t.Errorf("%s → %q, want %q", path, got, want)
		}
	}
}

// return in a regex location substitutes its captures, as nginx's
// `location ~ ^/old/(.*)$ { return 301 /new/$1; }` does; a capture's text
// is never expanded again.
func TestRouter_RegexCapturesInReturn(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    location ~ ^/old/(.*)$ { return 301 /new/$1?$args; }
    location ~* ^/u/(\w+)(/(\d+))?$ { return 200 "user $1 item $3 on $host"; }
    location /lit { return 200 "no regex: $1"; }
}
`, nil)
	for _, tc := range []struct{ target, header, want string }{
		{"/old/a/b?x=1", "Location", "/new/a/b?x=1"},
		{"/old/$host", "Location", "/new/$host?"},
		{"/U/ann/42", "", "user ann item 42 on example.com"},
		{"/u/bob", "", "user bob item  on example.com"},
		{"/lit", "", "no regex: $1"},
	} {
		w := get(s, "127.0.0.1:1", "GET", tc.target, nil)
		got := w.Body.String()
		if tc.header != "" {
			got = w.Header().Get(tc.header)
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.target, got, tc.want)
		}
	}
}

// try_files serves the first existing candidate, else falls back to a
// named location, a status or a URI.
func TestTryFiles(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    root {{DIR}}/www;
    location / { try_files $uri $uri/ @fallback; }
    location /spa/ { try_files $uri /spa/index.html; }
    location /strict/ { try_files $uri =403; }
    location @fallback { return 200 "fallback for $uri"; }
}
`, map[string]string{"www/a.txt": "A", "www/dir/index.html": "DIR", "www/spa/index.html": "SPA"})
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/a.txt", 200, "A"},
		{"/dir/", 200, "DIR"},
		{"/nope", 200, "fallback for /nope"},
		{"/spa/route/deep", 200, "SPA"},
		{"/strict/missing", 403, ""},
	} {
		w := get(s, "127.0.0.1:1", "GET", tc.path, nil)
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("%s → %d %q, want %d %q", tc.path, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
}

// error_page serves its page with the original status; a failing error
// page falls back to the built-in one instead of looping.
func TestErrorPage(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    root {{DIR}}/www;
    error_page 404 /errors/404.html;
    error_page 403 /errors/missing.html;
    location /private/ { return 403; }
    location /named/ { error_page 404 @nf; }
    location @nf { return 200 "named"; }
}
`, map[string]string{"www/errors/404.html": "custom 404"})
	for _, tc := range []struct {
		path   string
		hdr    map[string]string
		status int
		body   string
	}{
		{"/nope", nil, 404, "custom 404"},
		{"/nope", map[string]string{"Range": "bytes=0-1", "If-None-Match": "*"}, 404, "custom 404"},
		// As in nginx, a missing error page answers with its own 404.
		{"/private/x", nil, 404, "404 Not Found"},
		{"/named/x", nil, 200, "named"},
	} {
		w := get(s, "127.0.0.1:1", "GET", tc.path, tc.hdr)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s → %d %q, want %d containing %q", tc.path, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
}

// return and redirect expand variables; a bare error code uses the
// built-in page.
func TestReturnAndRedirect(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    location /old/ { redirect https://$host$request_uri permanent; }
    location /tmp/ { redirect /new; }
    location /gone { return 410; }
}
`, nil)
	w := get(s, "127.0.0.1:1", "GET", "/old/x?y=1", map[string]string{"Host": "Ex.test:81"})
	if w.Code != 301 || w.Header().Get("Location") != "https://ex.test/old/x?y=1" {
		t.Errorf("permanent redirect: %d %q", w.Code, w.Header().Get("Location"))
	}
	w = get(s, "127.0.0.1:1", "GET", "/tmp/", nil)
	if w.Code != 302 || w.Header().Get("Location") != "/new" {
		t.Errorf("default redirect: %d %q", w.Code, w.Header().Get("Location"))
	}
	w = get(s, "127.0.0.1:1", "HEAD", "/gone", nil)
	if w.Code != 410 {
		t.Errorf("return 410: %d", w.Code)
	}
}

// client_max_body_size answers 413 from Content-Length before any handler
// runs, and caps chunked bodies while they are read.
func TestBodyLimit(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    client_max_body_size 10;
    location /big/ { client_max_body_size 0; return 200 "ok"; }
    return 200 "ok";
}
`, nil)
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 11)))
	w := httptest.NewRecorder()
	(&listenerHandler{srv: s, addr: "127.0.0.1:1"}).ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("11-byte body over a 10-byte limit: %d", w.Code)
	}
	r = httptest.NewRequest("POST", "/big/", strings.NewReader(strings.Repeat("x", 1000)))
	w = httptest.NewRecorder()
	(&listenerHandler{srv: s, addr: "127.0.0.1:1"}).ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("unlimited location: %d", w.Code)
	}
}

// The JSON access log has one object per request with the fields an
// operator filters on.
func TestAccessLog_JSON(t *testing.T) {
	s, dir := newTestServer(t, `
access_log {{DIR}}/access.json json;
site a { listen 127.0.0.1:1; return 201 "made"; }
`, nil)
	get(s, "127.0.0.1:1", "GET", "/x?q=1", map[string]string{"User-Agent": "ua"})
	_ = s.logs.Close()
	b, err := os.ReadFile(filepath.Join(dir, "access.json"))
	if err != nil {
		t.Fatal(err)
	}
	line := string(b)
	for _, want := range []string{`"status":201`, `"uri":"/x?q=1"`, `"method":"GET"`, `"bytes":4`, `"user_agent":"ua"`, `"time":`} {
		if !strings.Contains(line, want) {
			t.Errorf("JSON access log %q lacks %s", line, want)
		}
	}
}

// access_log off in a location leaves its requests out of the site's log.
func TestAccessLog_OffInLocation(t *testing.T) {
	s, dir := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    access_log {{DIR}}/access.log;
    return 200 "page";
    location = /favicon.ico { access_log off; return 204; }
    location /health { access_log off; return 200 "ok"; }
}
`, nil)
	for _, p := range []string{"/one", "/favicon.ico", "/health/x", "/two"} {
		get(s, "127.0.0.1:1", "GET", p, nil)
	}
	_ = s.logs.Close()
	b, err := os.ReadFile(filepath.Join(dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if strings.Count(log, "\n") != 2 || !strings.Contains(log, "GET /one ") || !strings.Contains(log, "GET /two ") {
		t.Fatalf("access log:\n%s\nwant the lines of /one and /two only", log)
	}
}

// Control bytes and quotes in logged fields cannot forge log lines.
func TestAppendEscaped(t *testing.T) {
	got := string(appendEscaped(nil, "a\"b\\c\nd\x7f"))
	if want := `a\x22b\x5Cc\x0Ad\x7F`; got != want {
		t.Errorf("appendEscaped = %q, want %q", got, want)
	}
}

func TestRecorderKeepsReaderFrom(t *testing.T) {
	var w http.ResponseWriter = &recorder{ResponseWriter: httptest.NewRecorder()}
	if _, ok := w.(io.ReaderFrom); !ok {
		t.Fatal("recorder hides io.ReaderFrom; sendfile would be lost behind the access log")
	}
}
