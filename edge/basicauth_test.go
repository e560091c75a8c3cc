package edge

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// A changed user file is read again without a reload (as nginx reads it
// per request); a broken one leaves the users read before.
func TestBasicAuth_UserFileChanges(t *testing.T) {
	s, dir := newTestServer(t, `
site a {
    listen 127.0.0.1:1;
    auth_basic "Staging";
    auth_basic_user_file {{DIR}}/users;
    return 200 "inside";
}
`, map[string]string{"users": "ann:{PLAIN}one\n"})
	status := func(user, pass string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return serveReq(s, "127.0.0.1:1", r).Code
	}
	if st := status("ann", "one"); st != 200 {
		t.Fatalf("ann/one: %d", st)
	}
	write := func(body string) {
		t.Helper()
		p := filepath.Join(dir, "users")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// A later mtime than the file had, whatever the clock's grain.
		later := time.Now().Add(time.Duration(len(body)) * time.Second)
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	write("ann:{PLAIN}two\nbob:{PLAIN}three\n")
	waitFor(t, "the new users", 5*time.Second, func() bool { return status("bob", "three") == 200 })
	if st := status("ann", "one"); st != 401 {
		t.Fatalf("ann's old password: %d, want 401", st)
	}
	stillIn := func(what string) {
		t.Helper()
		deadline := time.Now().Add(3 * userFileRecheck)
		for time.Now().Before(deadline) {
			if st := status("bob", "three"); st != 200 {
				t.Fatalf("%s locked bob out: %d", what, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	write("this line is not user:hash\n")
	stillIn("a broken file")
	if err := os.Remove(filepath.Join(dir, "users")); err != nil {
		t.Fatal(err)
	}
	stillIn("a deleted file")
}

// waitFor polls cond until it holds, failing the test past timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
