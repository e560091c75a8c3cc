package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/tandem-server/tandem/conf"
)

// add_header follows nginx: success and redirect statuses only unless
// always; a location's own lines replace the site's; a named location
// reached by try_files applies its own.
func TestAddHeader_StatusesAndInheritance(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    root {{DIR}};
    add_header X-Frame-Options DENY always;
    add_header X-Site yes;
    location /assets/ { add_header Cache-Control "public, max-age=31536000"; }
    location /moved { return 301 /new; }
    location /app/ { try_files $uri @fallback; }
    location @fallback { add_header X-Fallback 1; return 200 "fallback"; }
}
`, map[string]string{"index.html": "home", "assets/a.css": "css"})
	for _, tc := range []struct {
		path   string
		status int
		want   map[string][]string // header → values; nil values = absent
	}{
		{"/index.html", 200, map[string][]string{"X-Frame-Options": {"DENY"}, "X-Site": {"yes"}, "Cache-Control": nil}},
		{"/missing", 404, map[string][]string{"X-Frame-Options": {"DENY"}, "X-Site": nil}},
		{"/assets/a.css", 200, map[string][]string{"Cache-Control": {"public, max-age=31536000"}, "X-Frame-Options": nil}},
		{"/assets/none.css", 404, map[string][]string{"Cache-Control": nil}},
		{"/moved", 301, map[string][]string{"X-Site": {"yes"}}},
		{"/app/x", 200, map[string][]string{"X-Fallback": {"1"}, "X-Site": nil}},
	} {
		w := get(s, "127.0.0.1:1", "GET", tc.path, nil)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, w.Code, tc.status)
		}
		for name, vals := range tc.want {
			if got := w.Header()[name]; !reflect.DeepEqual(got, vals) {
				t.Errorf("%s: %s = %q, want %q", tc.path, name, got, vals)
			}
		}
	}
}

// The adder keeps io.ReaderFrom, so static files still go out through
// sendfile, and adds its headers to a response started by ReadFrom.
func TestAddHeader_KeepsReaderFrom(t *testing.T) {
	rec := httptest.NewRecorder()
	var w http.ResponseWriter = &headerAdder{ResponseWriter: rec, headers: []conf.AddHeader{{Name: "X-A", Value: "1"}}}
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		t.Fatal("headerAdder hides io.ReaderFrom; sendfile would be lost")
	}
	if _, err := rf.ReadFrom(strings.NewReader("body")); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Header().Get("X-A") != "1" || rec.Body.String() != "body" {
		t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
}
