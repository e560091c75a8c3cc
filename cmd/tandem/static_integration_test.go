package main

import (
	"compress/gzip"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// copyExample copies examples/quickstart into a temp dir and moves its
// listener to port 0, so the test serves exactly what the README serves.
func copyExample(t *testing.T) (dir, confPath string) {
	t.Helper()
	dir = t.TempDir()
	if out, err := exec.Command("cp", "-a", "../../examples/quickstart/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v\n%s", err, out)
	}
	confPath = filepath.Join(dir, "tandem.conf")
	b, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "127.0.0.1:8080", "127.0.0.1:0", 1)
	if s == string(b) {
		t.Fatal("example config no longer listens on 127.0.0.1:8080; update the test")
	}
	writeFile(t, confPath, s)
	return dir, confPath
}

// The README's example site answers with the right statuses, validators,
// ranges and precompressed variants over real HTTP.
func TestExample_ServesStaticSite(t *testing.T) {
	dir, confPath := copyExample(t)
	in := startArgs(t, dir, confPath, "run", "-c", confPath, "--pid", filepath.Join(dir, "t.pid"))
	c := client()

	index := do(t, c, "GET", in.url("/"), nil)
	want, _ := os.ReadFile(filepath.Join(dir, "public/index.html"))
	if index.status != 200 || index.body != string(want) {
		t.Fatalf("GET / = %d, body %d bytes; want 200 with index.html", index.status, len(index.body))
	}
	if ct := index.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	etag, lm := index.header.Get("ETag"), index.header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("missing validators: ETag %q Last-Modified %q", etag, lm)
	}

	cases := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		status int
		check  func(t *testing.T, r result)
	}{
		{"if-none-match", "GET", "/", map[string]string{"If-None-Match": etag}, 304, emptyBody},
		{"if-modified-since", "GET", "/", map[string]string{"If-Modified-Since": lm}, 304, emptyBody},
		{"stale etag", "GET", "/", map[string]string{"If-None-Match": `"nope"`}, 200, nil},
		{"head", "HEAD", "/", nil, 200, func(t *testing.T, r result) {
			emptyBody(t, r)
			if r.header.Get("Content-Length") != itoa(len(want)) {
				t.Errorf("HEAD Content-Length = %q, want %d", r.header.Get("Content-Length"), len(want))
			}
		}},
		{"range", "GET", "/", map[string]string{"Range": "bytes=0-9"}, 206, func(t *testing.T, r result) {
			if r.body != string(want[:10]) || r.header.Get("Content-Range") != "bytes 0-9/"+itoa(len(want)) {
				t.Errorf("range body %q, Content-Range %q", r.body, r.header.Get("Content-Range"))
			}
		}},
		{"suffix range", "GET", "/", map[string]string{"Range": "bytes=-5"}, 206, func(t *testing.T, r result) {
			if r.body != string(want[len(want)-5:]) {
				t.Errorf("suffix range body %q", r.body)
			}
		}},
		{"multi range", "GET", "/", map[string]string{"Range": "bytes=0-1,5-6"}, 206, func(t *testing.T, r result) {
			checkMultipart(t, r, [][]byte{want[0:2], want[5:7]})
		}},
		{"if-range match", "GET", "/", map[string]string{"Range": "bytes=0-1", "If-Range": etag}, 206, nil},
		{"if-range stale", "GET", "/", map[string]string{"Range": "bytes=0-1", "If-Range": `"old"`}, 200, nil},
		{"unsatisfiable", "GET", "/", map[string]string{"Range": "bytes=999999-"}, 416, func(t *testing.T, r result) {
			if r.header.Get("Content-Range") != "bytes */"+itoa(len(want)) {
				t.Errorf("416 Content-Range = %q", r.header.Get("Content-Range"))
			}
		}},
		{"gzip sidecar", "GET", "/assets/style.css", map[string]string{"Accept-Encoding": "gzip, deflate"}, 200, func(t *testing.T, r result) {
			if r.header.Get("Content-Encoding") != "gzip" || !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
				t.Fatalf("Content-Encoding %q Vary %q", r.header.Get("Content-Encoding"), r.header.Get("Vary"))
			}
			zr, err := gzip.NewReader(strings.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := io.ReadAll(zr)
			orig, _ := os.ReadFile(filepath.Join(dir, "public/assets/style.css"))
			if string(plain) != string(orig) {
				t.Error("gzip sidecar does not decompress to the original")
			}
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
				t.Errorf("sidecar Content-Type %q, want the original's text/css", r.header.Get("Content-Type"))
			}
		}},
		{"identity when gzip refused", "GET", "/assets/style.css", map[string]string{"Accept-Encoding": "gzip;q=0"}, 200, func(t *testing.T, r result) {
			if r.header.Get("Content-Encoding") != "" || !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("Content-Encoding %q Vary %q", r.header.Get("Content-Encoding"), r.header.Get("Vary"))
			}
		}},
		{"expires", "GET", "/assets/style.css", nil, 200, func(t *testing.T, r result) {
			if r.header.Get("Cache-Control") != "max-age=604800" || r.header.Get("Expires") == "" {
				t.Errorf("Cache-Control %q Expires %q", r.header.Get("Cache-Control"), r.header.Get("Expires"))
			}
		}},
		{"dir redirect", "GET", "/docs?x=1", nil, 301, func(t *testing.T, r result) {
			if r.header.Get("Location") != "/docs/?x=1" {
				t.Errorf("Location %q", r.header.Get("Location"))
			}
		}},
		{"dir index", "GET", "/docs/", nil, 200, contains("Docs index")},
		{"redirect rule", "GET", "/old-page", nil, 301, func(t *testing.T, r result) {
			if r.header.Get("Location") != "/docs/" {
				t.Errorf("Location %q", r.header.Get("Location"))
			}
		}},
		{"return rule", "GET", "/health", nil, 200, func(t *testing.T, r result) {
			if r.body != "ok\n" {
				t.Errorf("body %q", r.body)
			}
		}},
		{"custom 404", "GET", "/missing", nil, 404, contains("site's own 404 page")},
		{"hidden file", "GET", "/.env", nil, 404, nil},
		{"post to static", "POST", "/", nil, 405, func(t *testing.T, r result) {
			if r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", r.header.Get("Allow"))
			}
		}},
	}
	writeFile(t, filepath.Join(dir, "public/.env"), "SECRET=1\n")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, tc.method, in.url(tc.path), tc.hdr)
			if r.status != tc.status {
				t.Fatalf("%s %s = %d, want %d (body %.200q)", tc.method, tc.path, r.status, tc.status, r.body)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	if code := in.stop(10e9); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

func emptyBody(t *testing.T, r result) {
	t.Helper()
	if r.body != "" {
		t.Errorf("body = %.100q, want empty", r.body)
	}
}

func contains(s string) func(*testing.T, result) {
	return func(t *testing.T, r result) {
		t.Helper()
		if !strings.Contains(r.body, s) {
			t.Errorf("body %.200q does not contain %q", r.body, s)
		}
	}
}

func checkMultipart(t *testing.T, r result, parts [][]byte) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q: %v", r.header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(strings.NewReader(r.body), params["boundary"])
	for i, want := range parts {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		got, _ := io.ReadAll(p)
		if string(got) != string(want) {
			t.Errorf("part %d = %q, want %q", i, got, want)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("more parts than %d: %v", len(parts), err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
