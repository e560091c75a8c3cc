package static

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secret is the content of a file outside Root; no response may contain it.
const secret = "TOP-SECRET-OUTSIDE-ROOT"

// tree builds a web root and, beside it, an "outside" directory with a
// secret, plus symlinks of every flavour. It returns (root, outside).
func tree(t testing.TB) (string, string) {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "www")
	out := filepath.Join(base, "outside")
	files := map[string]string{
		"index.html":                      "<h1>home</h1>",
		"hello.txt":                       "hello world",
		"blob":                            "\x89PNG\r\n\x1a\n rest of png",
		"docs/index.html":                 "<h1>docs</h1>",
		"sub/a.txt":                       "a",
		"sub/<b>&.txt":                    "b",
		"sub/.hidden":                     "h",
		"a b.txt":                         "space",
		"%2e":                             "literal percent name",
		".env":                            "DB_PASSWORD=x",
		".git/config":                     "[core]",
		".well-known/acme-challenge/tok1": "token",
		"app.js":                          "console.log('identity');",
		"app.js.gz":                       "GZIP-BYTES",
		"app.js.br":                       "BR-BYTES",
		"app.js.zst":                      "ZSTD-BYTES",
		"range.txt":                       "0123456789abcdefghij",
	}
	for name, body := range files {
		writeFile(t, filepath.Join(root, name), body)
	}
	writeFile(t, filepath.Join(out, "secret.txt"), secret)
	must(t, os.Symlink(filepath.Join(out, "secret.txt"), filepath.Join(root, "link-out-abs")))
	must(t, os.Symlink("../outside/secret.txt", filepath.Join(root, "link-out-rel")))
	must(t, os.Symlink(out, filepath.Join(root, "linkdir-out")))
	must(t, os.Symlink("hello.txt", filepath.Join(root, "link-in-rel")))
	must(t, os.Symlink(filepath.Join(root, "hello.txt"), filepath.Join(root, "link-in-abs")))
	must(t, os.Symlink("sub", filepath.Join(root, "linkdir-in")))
	return root, out
}

func writeFile(t testing.TB, name, body string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(name), 0o755))
	must(t, os.WriteFile(name, []byte(body), 0o644))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newTestHandler builds a handler over root with its own cache.
func newTestHandler(t testing.TB, opts Options, cfg CacheConfig) *Handler {
	t.Helper()
	c := NewCache(cfg)
	h, err := New(opts, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); c.Close() })
	return h
}

// cacheModes runs a test with content in memory and with every file on
// disk (sendfile path), since the two serve through different code.
var cacheModes = []struct {
	name string
	cfg  CacheConfig
}{
	{"memory", CacheConfig{}},
	{"disk", CacheConfig{MaxFileInMemory: -1}},
}

// do runs one request through Serve with a recorder; a non-zero return
// from Serve is written the way ServeHTTP would.
func do(h *Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// rawGet sends a request line byte-for-byte to a real server, so encodings
// arrive exactly as an attacker would send them and go through net/http's
// own parsing. It returns status and body (status 0 if the server hung up).
func rawGet(t testing.TB, addr, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
