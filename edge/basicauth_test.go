package edge

import (
	"net/http/httptest"
	"testing"
)

// auth_basic asks for a user and password from the user file; a wrong or
// missing one is a 401 with the realm; `auth_basic off` opens a location
// again; the check runs before the response cache.
func TestBasicAuth(t *testing.T) {
	s, _ := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    auth_basic "Staging";
    auth_basic_user_file {{DIR}}/users;
    return 200 "inside";
    location /public/ { auth_basic off; return 200 "public"; }
    location /cached { cache 10m; return 200 "cached"; }
}
`, map[string]string{"users": "# openssl passwd -apr1 -salt abcdefgh secret\nann:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n"})
	for i, tc := range []struct {
		path, user, pass string
		status           int
	}{
		{"/", "", "", 401},
		{"/", "ann", "wrong", 401},
		{"/", "bob", "secret", 401},
		{"/", "ann", "secret", 200},
		{"/public/x", "", "", 200},
		{"/cached", "ann", "secret", 200}, // fills the cache
		{"/cached", "", "", 401},          // a hit needs the password too
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.user != "" {
			r.SetBasicAuth(tc.user, tc.pass)
		}
		w := serveReq(s, "127.0.0.1:1", r)
		if w.Code != tc.status {
			t.Fatalf("request %d %s as %q: %d %q, want %d", i, tc.path, tc.user, w.Code, w.Body.String(), tc.status)
		}
		if got := w.Header().Get("WWW-Authenticate"); (tc.status == 401) != (got != "") {
			t.Fatalf("request %d: WWW-Authenticate %q with status %d", i, got, w.Code)
		}
		if tc.status == 401 && w.Header().Get("WWW-Authenticate") != `Basic realm="Staging", charset="UTF-8"` {
			t.Fatalf("challenge %q", w.Header().Get("WWW-Authenticate"))
		}
	}
}
