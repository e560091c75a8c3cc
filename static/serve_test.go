package static

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestServe_ContentType: by extension with charset for text, sniffed for
// unknown extensions, in both memory and disk modes.
func TestServe_ContentType(t *testing.T) {
	root, _ := tree(t)
	for _, m := range cacheModes {
		h := newTestHandler(t, Options{Root: root}, m.cfg)
		for p, want := range map[string]string{
			"/hello.txt":  "text/plain; charset=utf-8",
			"/index.html": "text/html; charset=utf-8",
			"/app.js":     "text/javascript; charset=utf-8",
			"/blob":       "image/png",
		} {
			w := do(h, "GET", p)
			if got := w.Header().Get("Content-Type"); w.Code != 200 || got != want {
				t.Errorf("%s %s: %d Content-Type %q; want %q", m.name, p, w.Code, got, want)
			}
		}
	}
}

// TestServe_Validators: strong ETag "<hex mtime>-<hex size>", Last-Modified,
// Accept-Ranges and an exact Content-Length on every 200.
func TestServe_Validators(t *testing.T) {
	root, _ := tree(t)
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(root, "hello.txt"), mt, mt))
	for _, m := range cacheModes {
		h := newTestHandler(t, Options{Root: root}, m.cfg)
		w := do(h, "GET", "/hello.txt")
		hd := w.Header()
		if !regexp.MustCompile(`^"[0-9a-f]+-b"$`).MatchString(hd.Get("ETag")) {
			t.Errorf("%s: ETag %q", m.name, hd.Get("ETag"))
		}
		if hd.Get("Last-Modified") != "Mon, 06 May 2024 07:08:09 GMT" {
			t.Errorf("%s: Last-Modified %q", m.name, hd.Get("Last-Modified"))
		}
		if hd.Get("Accept-Ranges") != "bytes" || hd.Get("Content-Length") != "11" || w.Body.String() != "hello world" {
			t.Errorf("%s: headers %v body %q", m.name, hd, w.Body.String())
		}
	}
}

// TestServe_HEAD_HeadersOnly: HEAD carries GET's headers and length, no body.
func TestServe_HEAD_HeadersOnly(t *testing.T) {
	root, _ := tree(t)
	for _, m := range cacheModes {
		h := newTestHandler(t, Options{Root: root}, m.cfg)
		srv := httptest.NewServer(h)
		resp, err := http.Head(srv.URL + "/hello.txt")
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.ContentLength != 11 || resp.Header.Get("ETag") == "" {
			t.Errorf("%s: HEAD = %d len %d %v", m.name, resp.StatusCode, resp.ContentLength, resp.Header)
		}
		w := do(h, "HEAD", "/hello.txt")
		if w.Body.Len() != 0 || w.Header().Get("Content-Length") != "11" {
			t.Errorf("%s: HEAD wrote %q, Content-Length %q", m.name, w.Body.String(), w.Header().Get("Content-Length"))
		}
	}
}

// TestServe_Method_405: only GET and HEAD are served.
func TestServe_Method_405(t *testing.T) {
	root, _ := tree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{})
	w := do(h, "POST", "/hello.txt")
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

// TestServe_ReturnsStatusUnwritten: 404/403 come back to the caller with
// nothing written, for error_page.
func TestServe_ReturnsStatusUnwritten(t *testing.T) {
	root, _ := tree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{})
	for p, want := range map[string]int{"/nope": 404, "/sub/": 403, "/.env": 404, "/hello.txt/": 404, "/../x": 404} {
		w := httptest.NewRecorder()
		got := h.Serve(w, httptest.NewRequest("GET", "/", nil), p)
		if got != want || w.Body.Len() != 0 || len(w.Header()) != 0 {
			t.Errorf("Serve(%s) = %d, wrote %q %v; want %d and nothing written", p, got, w.Body.String(), w.Header(), want)
		}
	}
}

// TestServe_PermissionDenied_403: an unreadable file is 403, not 500.
func TestServe_PermissionDenied_403(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads everything")
	}
	root, _ := tree(t)
	name := filepath.Join(root, "sub", "locked")
	writeFile(t, name, "x")
	must(t, os.Chmod(name, 0))
	for _, m := range cacheModes {
		h := newTestHandler(t, Options{Root: root}, m.cfg)
		if w := do(h, "GET", "/sub/locked"); w.Code != 403 || strings.Contains(w.Body.String(), "permission") {
			t.Errorf("%s: GET locked = %d %q", m.name, w.Code, w.Body.String())
		}
	}
}

// TestServe_Dir_Redirect_301: a directory without its slash redirects to
// path + "/" keeping the query.
func TestServe_Dir_Redirect_301(t *testing.T) {
	root, _ := tree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{})
	for target, want := range map[string]string{
		"/docs":       "/docs/",
		"/docs?a=1&b": "/docs/?a=1&b",
		"//docs":      "/docs/",
	} {
		w := do(h, "GET", target)
		if w.Code != 301 || w.Header().Get("Location") != want {
			t.Errorf("GET %s = %d Location %q; want 301 %q", target, w.Code, w.Header().Get("Location"), want)
		}
	}
}

// TestServe_Dir_Index: a directory with its slash serves its index file.
func TestServe_Dir_Index(t *testing.T) {
	root, _ := tree(t)
	writeFile(t, filepath.Join(root, "docs", "default.htm"), "default")
	h := newTestHandler(t, Options{Root: root}, CacheConfig{})
	if w := do(h, "GET", "/docs/"); w.Code != 200 || w.Body.String() != "<h1>docs</h1>" ||
		w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("GET /docs/ = %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	h2 := newTestHandler(t, Options{Root: root, Index: []string{"missing.html", "default.htm"}}, CacheConfig{})
	if w := do(h2, "GET", "/docs/"); w.Body.String() != "default" {
		t.Errorf("second index: %q", w.Body.String())
	}
	if k := h.Lookup("/docs/"); k != Dir {
		t.Errorf("Lookup(/docs/) = %v", k)
	}
}

// TestServe_Dir_NoIndex_403: no index and no autoindex is 403.
func TestServe_Dir_NoIndex_403(t *testing.T) {
	root, _ := tree(t)
	h := newTestHandler(t, Options{Root: root}, CacheConfig{})
	if w := do(h, "GET", "/sub/"); w.Code != 403 {
		t.Errorf("GET /sub/ = %d", w.Code)
	}
}

// TestServe_Autoindex_Listing: sorted, escaped, hidden entries skipped.
func TestServe_Autoindex_Listing(t *testing.T) {
	root, _ := tree(t)
	must(t, os.Mkdir(filepath.Join(root, "sub", "zdir"), 0o755))
	h := newTestHandler(t, Options{Root: root, Autoindex: true}, CacheConfig{})
	w := do(h, "GET", "/sub/")
	body := w.Body.String()
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /sub/ = %d %v", w.Code, w.Header())
	}
	if strings.Contains(body, ".hidden") || strings.Contains(body, "<b>") {
		t.Errorf("listing leaks hidden or unescaped names:\n%s", body)
	}
	ia := strings.Index(body, `href="./%3Cb%3E&amp;.txt"`)
	ib := strings.Index(body, `>&lt;b&gt;&amp;.txt</a>`)
	ic := strings.Index(body, `href="./a.txt"`)
	id := strings.Index(body, `href="./zdir/"`)
	if ia < 0 || ib < 0 || ic < 0 || id < 0 || !(ia < ic && ic < id) {
		t.Errorf("listing not escaped/sorted (%d %d %d %d):\n%s", ia, ib, ic, id, body)
	}
	hh := newTestHandler(t, Options{Root: root, Autoindex: true, AllowHidden: true}, CacheConfig{})
	if !strings.Contains(do(hh, "GET", "/sub/").Body.String(), ".hidden") {
		t.Errorf("AllowHidden listing misses .hidden")
	}
}

// TestServe_Expires: Expires > 0 adds Cache-Control max-age and Expires.
func TestServe_Expires(t *testing.T) {
	root, _ := tree(t)
	h := newTestHandler(t, Options{Root: root, Expires: time.Hour}, CacheConfig{})
	w := do(h, "GET", "/hello.txt")
	exp, err := http.ParseTime(w.Header().Get("Expires"))
	if w.Header().Get("Cache-Control") != "max-age=3600" || err != nil || time.Until(exp) < 59*time.Minute {
		t.Errorf("Cache-Control %q Expires %q", w.Header().Get("Cache-Control"), w.Header().Get("Expires"))
	}
	h0 := newTestHandler(t, Options{Root: root}, CacheConfig{})
	if w := do(h0, "GET", "/hello.txt"); w.Header().Get("Cache-Control") != "" || w.Header().Get("Expires") != "" {
		t.Errorf("Expires 0 still set headers: %v", w.Header())
	}
}

// TestNew_Validation: Root must be an absolute directory; options checked.
func TestNew_Validation(t *testing.T) {
	root, _ := tree(t)
	bad := []Options{
		{Root: "relative/dir"},
		{Root: filepath.Join(root, "hello.txt")},
		{Root: filepath.Join(root, "missing")},
		{Root: root, Index: []string{"../x"}},
		{Root: root, Precompressed: []string{"lzma"}},
	}
	for _, o := range bad {
		if h, err := New(o, nil); err == nil {
			h.Close()
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// shrinkingWriter truncates the file once the first chunk of the body
// has been written, as a deploy rewriting it in place would.
type shrinkingWriter struct {
	http.ResponseWriter
	path    string
	written int64
}

func (s *shrinkingWriter) Write(p []byte) (int, error) {
	if s.written == 0 && len(p) > 0 {
		if err := os.Truncate(s.path, 100); err != nil {
			return 0, err
		}
	}
	n, err := s.ResponseWriter.Write(p)
	s.written += int64(n)
	return n, err
}

// A file that shrinks mid-send cuts the response and says so in the log,
// for a whole file and for a range.
func TestStatic_FileShrinkingMidSendIsLogged(t *testing.T) {
	for _, rng := range []string{"", "bytes=10-99999"} {
		root := t.TempDir()
		path := filepath.Join(root, "big.bin")
		must(t, os.WriteFile(path, bytes.Repeat([]byte("x"), 200000), 0o644))
		core, logs := observer.New(zapcore.WarnLevel)
		h := newTestHandler(t, Options{Root: root, Log: zap.New(core)}, CacheConfig{MaxFileInMemory: -1})
		req := httptest.NewRequest(http.MethodGet, "/big.bin", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		rec := httptest.NewRecorder()
		sw := &shrinkingWriter{ResponseWriter: rec, path: path}
		if st := h.Serve(sw, req, "/big.bin"); st != 0 {
			t.Fatalf("range %q: status %d", rng, st)
		}
		cl, _ := strconv.ParseInt(rec.Header().Get("Content-Length"), 10, 64)
		if int64(rec.Body.Len()) >= cl {
			t.Fatalf("range %q: sent %d of %d bytes, want a cut response", rng, rec.Body.Len(), cl)
		}
		entries := logs.FilterMessageSnippet("file shrank while being sent").All()
		if len(entries) != 1 || entries[0].ContextMap()["file"] != path {
			t.Fatalf("range %q: log %v, want one entry naming %s", rng, logs.All(), path)
		}
	}
}
