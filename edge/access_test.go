package edge

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// allow/deny follow nginx: lines in order, the first match decides, none
// matching allows; a location's own lines replace its site's; a denied
// request is a 403 that error_page can take; behind a trusted proxy the
// client is the one X-Forwarded-For names.
func TestAccess_AllowDeny(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    trusted_proxies 10.9.9.9;
    deny 192.0.2.66;
    return 200 "open";
    location /admin/ {
        allow 127.0.0.1;
        allow 192.0.2.0/24;
        deny all;
        error_page 403 @no;
        return 200 "admin";
    }
    location /internal/ { allow private; deny all; return 200 "internal"; }
    location @no { return 403 "not for you"; }
}
`, nil)
	for _, tc := range []struct {
		remote, xff, path string
		status            int
		body              string
	}{
		{"198.51.100.1:5000", "", "/", 200, "open"},
		{"192.0.2.66:5000", "", "/", 403, ""},
		{"192.0.2.66:5000", "", "/admin/", 200, "admin"}, // the location's own lines replace the site's
		{"127.0.0.1:5000", "", "/admin/x", 200, "admin"},
		{"198.51.100.1:5000", "", "/admin/", 403, "not for you"},
		{"10.9.9.9:5000", "192.0.2.7", "/admin/", 200, "admin"},           // trusted proxy: the client counts
		{"10.9.9.9:5000", "198.51.100.1", "/admin/", 403, "not for you"},  // ... both ways
		{"198.51.100.1:5000", "127.0.0.1", "/admin/", 403, "not for you"}, // untrusted peer: its header is ignored
		{"10.1.2.3:5000", "", "/internal/", 200, "internal"},
		{"[fd00::1]:5000", "", "/internal/", 200, "internal"},
		{"198.51.100.1:5000", "", "/internal/", 403, ""},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		w := serveReq(s, "127.0.0.1:1", r)
		if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("%s from %s (XFF %q): %d %q, want %d %q", tc.path, tc.remote, tc.xff, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
}

// A cached response never reaches a refused client: the rules run before
// the cache.
func TestAccess_BeforeTheCache(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    location /report {
        cache 10m;
        allow 127.0.0.1;
        deny all;
        return 200 "secret";
    }
}
`, nil)
	for i, tc := range []struct {
		remote string
		status int
	}{
		{"127.0.0.1:5000", 200}, // fills the cache
		{"127.0.0.1:5000", 200}, // a hit
		{"198.51.100.1:5000", 403},
	} {
		r := httptest.NewRequest("GET", "/report", nil)
		r.RemoteAddr = tc.remote
		w := serveReq(s, "127.0.0.1:1", r)
		if w.Code != tc.status || (tc.status == 403 && strings.Contains(w.Body.String(), "secret")) {
			t.Fatalf("request %d from %s: %d %q, want %d", i, tc.remote, w.Code, w.Body.String(), tc.status)
		}
	}
}
