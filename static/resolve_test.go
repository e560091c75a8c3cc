package static

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCleanPath_Table: the string step refuses every traversal shape and
// normalises harmless ones.
func TestCleanPath_Table(t *testing.T) {
	cases := []struct {
		in, strip string
		hidden    bool
		rel       string
		slash, ok bool
	}{
		{in: "/", rel: "", slash: true, ok: true},
		{in: "/a/b.txt", rel: "a/b.txt", ok: true},
		{in: "/a/b/", rel: "a/b", slash: true, ok: true},
		{in: "/a//b", rel: "a/b", ok: true},
		{in: "//a", rel: "a", ok: true},
		{in: "/a/./b", rel: "a/b", ok: true},
		{in: "/a/b//", rel: "a/b", slash: true, ok: true},
		{in: "/..", ok: false},
		{in: "/../etc/passwd", ok: false},
		{in: "/a/../b", ok: false},
		{in: "/a/..", ok: false},
		{in: "/a\\..\\b", ok: false},
		{in: "/a\x00.txt", ok: false},
		{in: "/\xc0\xae\xc0\xae/etc", ok: false},         // overlong "." decoded once
		{in: "/%2e%2e/etc", rel: "%2e%2e/etc", ok: true}, // double-encoded: literal name
		{in: "/.git/config", ok: false},
		{in: "/.env", ok: false},
		{in: "/a/.hidden", ok: false},
		{in: "/.well-known/acme-challenge/x", rel: ".well-known/acme-challenge/x", ok: true},
		{in: "/a/.well-known/x", ok: false},
		{in: "/.well-known/.x", ok: false},
		{in: "/.env", hidden: true, rel: ".env", ok: true},
		{in: "/..", hidden: true, ok: false},
		{in: "/img/x.png", strip: "/img/", rel: "x.png", ok: true},
		{in: "/img/", strip: "/img/", rel: "", slash: true, ok: true},
		{in: "/other/x.png", strip: "/img/", ok: false},
		{in: "/img/../x", strip: "/img/", ok: false},
		{in: "/img//etc/passwd", strip: "/img/", rel: "etc/passwd", ok: true},
	}
	for _, c := range cases {
		rel, slash, ok := cleanPath(c.in, c.strip, c.hidden)
		if ok != c.ok || (ok && (rel != c.rel || slash != c.slash)) {
			t.Errorf("cleanPath(%q, %q, %v) = %q, %v, %v; want %q, %v, %v",
				c.in, c.strip, c.hidden, rel, slash, ok, c.rel, c.slash, c.ok)
		}
	}
}

// TestResolve_EncodedRequests: every encoding of a traversal, sent raw to a
// real server, fails to reach the secret beside Root.
func TestResolve_EncodedRequests(t *testing.T) {
	root, _ := tree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	attacks := []string{
		"/../outside/secret.txt",
		"/..%2foutside%2fsecret.txt",
		"/%2e%2e/outside/secret.txt",
		"/%2E%2E%2Foutside%2Fsecret.txt",
		"/%2e%2e%2f%2e%2e%2foutside/secret.txt",
		"/..%5coutside%5csecret.txt",
		"/%5c..%5coutside%5csecret.txt",
		"/hello.txt%00.html",
		"/%c0%ae%c0%ae/outside/secret.txt",
		"/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt",
		"/%252e%252e/outside/secret.txt",
		"/%252e%252e%252foutside%252fsecret.txt",
		"/.%2e/outside/secret.txt",
		"/%2e./outside/secret.txt",
		"/sub/..%2f..%2foutside/secret.txt",
		"/./../outside/secret.txt",
		"//../outside/secret.txt",
		"/link-out-abs",
		"/link-out-rel",
		"/linkdir-out/secret.txt",
		"/%6c%69%6e%6b-out-abs", // "link-out-abs" fully encoded
		"/.git/config",
		"/%2egit/config",
		"/.env",
		"/%2eenv",
	}
	for _, a := range attacks {
		code, body := rawGet(t, addr, a)
		if code == http.StatusOK || strings.Contains(body, secret) || strings.Contains(body, "DB_PASSWORD") || strings.Contains(body, "[core]") {
			t.Errorf("GET %s = %d %q; want refusal", a, code, body)
		}
	}
	// Benign encodings still work.
	ok := map[string]string{
		"/hello.txt":                         "hello world",
		"/%68ello.txt":                       "hello world",
		"/a%20b.txt":                         "space",
		"/%252e":                             "literal percent name",
		"/sub//a.txt":                        "a",
		"/.well-known/acme-challenge/tok1":   "token",
		"/%2ewell-known/acme-challenge/tok1": "token",
		"/link-in-rel":                       "hello world",
		"/link-in-abs":                       "hello world",
		"/linkdir-in/a.txt":                  "a",
		"/sub%2fa.txt":                       "a", // %2f is a separator, as in nginx
	}
	for target, want := range ok {
		if code, body := rawGet(t, addr, target); code != 200 || body != want {
			t.Errorf("GET %s = %d %q; want 200 %q", target, code, body, want)
		}
	}
}

// TestResolve_Symlinks: symlinks inside Root are followed; ones leading out
// are refused unless FollowSymlinks.
func TestResolve_Symlinks(t *testing.T) {
	root, _ := tree(t)
	cases := []struct {
		path   string
		follow bool
		want   Kind
	}{
		{"/link-in-rel", false, File},
		{"/link-in-abs", false, File},
		{"/linkdir-in", false, Dir},
		{"/linkdir-in/a.txt", false, File},
		{"/link-out-abs", false, NotFound},
		{"/link-out-rel", false, NotFound},
		{"/linkdir-out", false, NotFound},
		{"/linkdir-out/secret.txt", false, NotFound},
		{"/link-out-abs", true, File},
		{"/link-out-rel", true, File},
		{"/linkdir-out/secret.txt", true, File},
	}
	for _, c := range cases {
		h := newTestHandler(t, Options{Root: root, FollowSymlinks: c.follow}, CacheConfig{})
		if got := h.Lookup(c.path); got != c.want {
			t.Errorf("follow=%v Lookup(%s) = %v; want %v", c.follow, c.path, got, c.want)
		}
	}
}

// TestResolve_RootIsSymlink: a Root reached through a symlink works, and
// absolute links into its real path count as inside.
func TestResolve_RootIsSymlink(t *testing.T) {
	root, _ := tree(t)
	alias := filepath.Join(t.TempDir(), "alias")
	must(t, os.Symlink(root, alias))
	h := newTestHandler(t, Options{Root: alias}, CacheConfig{})
	for p, want := range map[string]Kind{"/hello.txt": File, "/link-in-abs": File, "/link-out-abs": NotFound} {
		if got := h.Lookup(p); got != want {
			t.Errorf("Lookup(%s) = %v; want %v", p, got, want)
		}
	}
}

// FuzzResolve: whatever the path, anything that resolves lies within the
// real Root, and no response ever carries the outside secret.
//
//	go test -fuzz=FuzzResolve ./static/
func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"/", "/hello.txt", "/../outside/secret.txt", "/..%2f", "/a/../../b",
		"/link-out-abs", "/linkdir-out/secret.txt", "/link-in-abs", "/.git/config",
		"/\xc0\xae\xc0\xae/", "/a\\..\\b", "/x\x00", "//..//outside", "/.well-known/../..",
	} {
		f.Add(s)
	}
	root, _ := tree(f)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	h := newTestHandler(f, Options{Root: root, Autoindex: true}, CacheConfig{})
	f.Fuzz(func(t *testing.T, p string) {
		if rel, _, ok := cleanPath(p, "", false); ok {
			if joined := filepath.Join(root, rel); !within(root, joined) {
				t.Fatalf("cleanPath(%q) = %q escapes lexically", p, rel)
			}
			if tg, _, err := h.fs.locate(rel); err == nil {
				name := tg.abs
				if name == "" {
					name = filepath.Join(root, tg.rel)
				}
				real, err := filepath.EvalSymlinks(name)
				if err == nil && !within(realRoot, real) {
					t.Fatalf("%q resolved to %q outside %q", p, real, realRoot)
				}
			}
		}
		r := httptest.NewRequest("GET", "/", nil)
		w := httptest.NewRecorder()
		h.Serve(w, r, p)
		if strings.Contains(w.Body.String(), secret) {
			t.Fatalf("%q served the secret", p)
		}
	})
}
