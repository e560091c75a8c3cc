package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge/compress"
)

// compressGuard bounds a step that must finish: a failure, never a sleep.
const compressGuard = 10 * time.Second

// page is a compressible HTML body of about n bytes.
func page(n int) string {
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html><body>\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<p class=\"entry\" id=\"e%d\">Entry %d of the archive, posted %d days ago.</p>\n", i, i, i%97)
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// rawDo sends one request with a client that neither adds
// Accept-Encoding nor decodes, so the test sees the wire bytes.
func rawDo(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp := rawOpen(t, method, url, hdr)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func rawOpen(t *testing.T, method, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: compressGuard, Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(c.CloseIdleConnections)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// decoder wraps r in the real decoder for a Content-Encoding.
func decoder(t *testing.T, enc string, r io.Reader) io.Reader {
	t.Helper()
	switch enc {
	case "":
		return r
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip reader: %v", err)
		}
		return zr
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatalf("zstd reader: %v", err)
		}
		t.Cleanup(zr.Close)
		return zr
	case "br":
		return brotli.NewReader(r)
	}
	t.Fatalf("unexpected Content-Encoding %q", enc)
	return nil
}

func decodeBody(t *testing.T, enc string, body []byte) string {
	t.Helper()
	out, err := io.ReadAll(decoder(t, enc, bytes.NewReader(body)))
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return string(out)
}

func varies(h http.Header) bool {
	return strings.Contains(strings.Join(h.Values("Vary"), ","), "Accept-Encoding")
}

// A static file is compressed with the coding the client weights highest,
// the compress order breaking ties; it decodes to the file, says Vary,
// drops Content-Length and weakens its ETag. Without an acceptable coding
// it goes out as it is.
func TestCompress_StaticFollowsAcceptEncoding(t *testing.T) {
	body := page(16 << 10)
	addr := startEdge(t, `site _ { listen 127.0.0.1:0; root {{DIR}}; compress zstd br gzip; }`,
		map[string]string{"page.html": body})
	for _, c := range []struct{ ae, want string }{
		{"gzip, deflate, br, zstd", "zstd"}, // current browsers: equal weights, server order
		{"gzip, deflate, br", "br"},         // Safari
		{"gzip", "gzip"},
		{"br;q=0.5, gzip;q=0.8", "gzip"},
		{"zstd;q=0, *;q=0.3", "br"},
		{"gzip;q=0.5, identity", ""},
		{"deflate", ""},
		{"", ""},
	} {
		t.Run(c.ae, func(t *testing.T) {
			hdr := map[string]string{}
			if c.ae != "" {
				hdr["Accept-Encoding"] = c.ae
			}
			resp, raw := rawDo(t, "GET", "http://"+addr+"/page.html", hdr)
			enc := resp.Header.Get("Content-Encoding")
			if resp.StatusCode != 200 || enc != c.want {
				t.Fatalf("status %d Content-Encoding %q, want 200 %q", resp.StatusCode, enc, c.want)
			}
			if got := decodeBody(t, enc, raw); got != body {
				t.Fatalf("decoded body differs from the file (%d bytes, want %d)", len(got), len(body))
			}
			if !varies(resp.Header) {
				t.Errorf("Vary = %q, want Accept-Encoding", resp.Header.Values("Vary"))
			}
			etag := resp.Header.Get("Etag")
			// net/http may set the length of a short compressed body
			// itself; never the file's.
			lengthOK := resp.ContentLength == -1 || resp.ContentLength == int64(len(raw))
			if enc != "" && (!lengthOK || !strings.HasPrefix(etag, `W/"`) || len(raw) >= len(body)/2) {
				t.Errorf("compressed: length %d, ETag %q, %d bytes on the wire; want the encoded length or none, a weak ETag, well under %d",
					resp.ContentLength, etag, len(raw), len(body))
			}
			if enc == "" && (resp.ContentLength != int64(len(body)) || strings.HasPrefix(etag, "W/")) {
				t.Errorf("identity: length %d ETag %q, want the file's", resp.ContentLength, etag)
			}
		})
	}
}

// HEAD, ranges and bodies under compress_min_length are never compressed;
// types off the list get no Vary either.
func TestCompress_StaticNeverCases(t *testing.T) {
	body := page(8 << 10)
	addr := startEdge(t, `site _ { listen 127.0.0.1:0; root {{DIR}}; compress gzip; }`, map[string]string{
		"page.html":  body,
		"small.html": "<p>hello</p>\n",
		"photo.png":  strings.Repeat("\x89PNG", 1<<10),
	})
	gz := map[string]string{"Accept-Encoding": "gzip"}
	check := func(name string, resp *http.Response, status int, vary bool) {
		t.Helper()
		if resp.StatusCode != status || resp.Header.Get("Content-Encoding") != "" || varies(resp.Header) != vary {
			t.Errorf("%s: status %d Content-Encoding %q Vary %q; want %d, identity, vary=%v", name, resp.StatusCode,
				resp.Header.Get("Content-Encoding"), resp.Header.Values("Vary"), status, vary)
		}
	}
	resp, _ := rawDo(t, "HEAD", "http://"+addr+"/page.html", gz)
	check("HEAD", resp, 200, true)
	resp, raw := rawDo(t, "GET", "http://"+addr+"/page.html", map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
	check("Range", resp, 206, true)
	if string(raw) != body[:100] {
		t.Errorf("range body %q, want the first 100 identity bytes", raw)
	}
	resp, raw = rawDo(t, "GET", "http://"+addr+"/small.html", gz)
	check("under compress_min_length", resp, 200, true)
	if string(raw) != "<p>hello</p>\n" {
		t.Errorf("small body %q", raw)
	}
	resp, _ = rawDo(t, "GET", "http://"+addr+"/photo.png", gz)
	check("image/png", resp, 200, false)
}

// Precompressed sidecars win: the .zst or .gz file is sent byte for byte
// with its own Content-Encoding, never compressed twice; a coding with no
// sidecar is compressed on the fly from the identity file.
func TestCompress_SidecarsPassThrough(t *testing.T) {
	body := page(16 << 10)
	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf)
	_, _ = zw.Write([]byte(body))
	_ = zw.Close()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	zst := enc.EncodeAll([]byte(body), nil)
	_ = enc.Close()
	addr := startEdge(t, `site _ { listen 127.0.0.1:0; root {{DIR}}; compress zstd br gzip; compress_min_length 0; }`,
		map[string]string{"page.html": body, "page.html.gz": gzBuf.String(), "page.html.zst": string(zst)})
	for _, c := range []struct {
		ae, want string
		exact    []byte // the sidecar's bytes, or nil for on-the-fly
	}{
		{"gzip", "gzip", gzBuf.Bytes()},
		{"zstd, gzip", "zstd", zst},
		{"br", "br", nil},
	} {
		resp, raw := rawDo(t, "GET", "http://"+addr+"/page.html", map[string]string{"Accept-Encoding": c.ae})
		if got := resp.Header.Values("Content-Encoding"); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: Content-Encoding %q, want exactly [%s]", c.ae, got, c.want)
			continue
		}
		if c.exact != nil && !bytes.Equal(raw, c.exact) {
			t.Errorf("%s: body is not the sidecar's bytes (%d vs %d)", c.ae, len(raw), len(c.exact))
		}
		if got := decodeBody(t, c.want, raw); got != body {
			t.Errorf("%s: decodes to %d bytes, want the page", c.ae, len(got))
		}
		if !varies(resp.Header) || len(resp.Header.Values("Vary")) != 1 {
			t.Errorf("%s: Vary %q, want Accept-Encoding once", c.ae, resp.Header.Values("Vary"))
		}
	}
}

// `compress off;` in a location wins over the site's compress, and such
// a location's responses do not vary.
func TestCompress_OffInLocation(t *testing.T) {
	body := page(8 << 10)
	addr := startEdge(t, `site _ {
    listen 127.0.0.1:0; root {{DIR}}; compress gzip;
    location /dl/ { compress off; }
}`, map[string]string{"page.html": body, "dl/page.html": body})
	gz := map[string]string{"Accept-Encoding": "gzip"}
	resp, _ := rawDo(t, "GET", "http://"+addr+"/page.html", gz)
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("site: Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	resp, raw := rawDo(t, "GET", "http://"+addr+"/dl/page.html", gz)
	if resp.Header.Get("Content-Encoding") != "" || varies(resp.Header) || string(raw) != body {
		t.Errorf("compress off: Content-Encoding %q Vary %q, %d bytes; want the file as it is",
			resp.Header.Get("Content-Encoding"), resp.Header.Values("Vary"), len(raw))
	}
}

// The location that writes the response decides: an error page is
// compressed by the location that serves it (even for a location with
// compress off), a built-in error page by the failing location, and a
// try_files fallback follows its named location's setting.
func TestCompress_ErrorPagesAndHandOvers(t *testing.T) {
	notFound := page(4 << 10)
	long := strings.Repeat("fallback answer ", 200)
	addr := startEdge(t, `site _ {
    listen 127.0.0.1:0; root {{DIR}};
    compress gzip; compress_min_length 0;
    error_page 404 /404.html;
    location /dl/ { compress off; }
    location /builtin/ { error_page 500 /500.html; }
    location /t/ { try_files $uri @raw; }
    location @raw { compress off; return 200 "`+long+`"; }
    location /u/ { compress off; try_files $uri @zipped; }
    location @zipped { return 200 "`+long+`"; }
}`, map[string]string{"404.html": notFound})
	gz := map[string]string{"Accept-Encoding": "gzip"}
	for _, c := range []struct {
		path, enc string
		status    int
		body      string
	}{
		{"/missing", "gzip", 404, notFound},
		{"/dl/missing", "gzip", 404, notFound}, // /404.html is served by location /, which compresses
		{"/builtin/missing", "gzip", 404, ""},  // tandem's own page, from /builtin/
		{"/t/missing", "", 200, long},
		{"/u/missing", "gzip", 200, long},
	} {
		resp, raw := rawDo(t, "GET", "http://"+addr+c.path, gz)
		enc := resp.Header.Get("Content-Encoding")
		if resp.StatusCode != c.status || enc != c.enc {
			t.Errorf("%s: %d %q, want %d %q", c.path, resp.StatusCode, enc, c.status, c.enc)
			continue
		}
		got := decodeBody(t, enc, raw)
		if c.body != "" && got != c.body || c.body == "" && !strings.Contains(got, "404 Not Found") {
			t.Errorf("%s: decoded body %.80q", c.path, got)
		}
	}
}

// A proxied response is compressed on its way out, with the upstream's
// strong ETag weakened.
func TestCompress_Proxy(t *testing.T) {
	payload := `{"items":[` + strings.Repeat(`{"id":1,"name":"tandem","tags":["edge","compress"]},`, 200) + `{}]}`
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", `"v1"`)
		_, _ = io.WriteString(w, payload)
	}))
	t.Cleanup(backend.Close)
	addr := startEdge(t, `site _ {
    listen 127.0.0.1:0;
    compress zstd gzip;
    location /api/ { proxy http://`+backend.Listener.Addr().String()+`; compress_level gzip 1; }
}`, nil)
	for _, alg := range []string{"zstd", "gzip"} {
		resp, raw := rawDo(t, "GET", "http://"+addr+"/api/items", map[string]string{"Accept-Encoding": alg})
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != alg || resp.Header.Get("Etag") != `W/"v1"` {
			t.Fatalf("%s: %d Content-Encoding %q ETag %q", alg, resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("Etag"))
		}
		if got := decodeBody(t, alg, raw); got != payload {
			t.Errorf("%s: decoded %d bytes, want the upstream's %d", alg, len(got), len(payload))
		}
	}
}

// Server-sent events from a proxied backend stream through compression:
// the client decodes the first event while the backend is still running.
func TestCompress_ProxySSEStreams(t *testing.T) {
	for _, alg := range []string{"zstd", "br", "gzip"} {
		t.Run(alg, func(t *testing.T) {
			release := make(chan struct{})
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "data: two\n\n")
			}))
			t.Cleanup(backend.Close)
			released := false
			t.Cleanup(func() {
				if !released {
					close(release)
				}
			})
			addr := startEdge(t, `site _ {
    listen 127.0.0.1:0;
    compress zstd br gzip;
    location /events { proxy http://`+backend.Listener.Addr().String()+`; }
}`, nil)
			resp := rawOpen(t, "GET", "http://"+addr+"/events", map[string]string{"Accept-Encoding": alg})
			defer resp.Body.Close()
			if resp.Header.Get("Content-Encoding") != alg || !varies(resp.Header) {
				t.Fatalf("Content-Encoding %q Vary %q, want %s and Accept-Encoding", resp.Header.Get("Content-Encoding"), resp.Header.Values("Vary"), alg)
			}
			br := bufio.NewReader(decoder(t, alg, resp.Body))
			first := make(chan string, 1)
			go func() {
				line, _ := br.ReadString('\n')
				first <- line
			}()
			select {
			case line := <-first:
				if line != "data: one\n" {
					t.Fatalf("first line %q, want data: one", line)
				}
			case <-time.After(compressGuard):
				t.Fatal("the first event did not arrive while the backend was still running")
			}
			released = true
			close(release)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "\ndata: two\n\n" {
				t.Errorf("rest %q (%v), want the second event", rest, err)
			}
		})
	}
}

// readFromProbe stands in for net/http's ResponseWriter and records what
// ReadFrom was given: net/http turns a ReadFrom of a (limited) *os.File
// into sendfile.
type readFromProbe struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
	srcs   []io.Reader
}

func (p *readFromProbe) Header() http.Header { return p.hdr }

func (p *readFromProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *readFromProbe) Write(b []byte) (int, error) {
	p.WriteHeader(200)
	return p.body.Write(b)
}

func (p *readFromProbe) ReadFrom(src io.Reader) (int64, error) {
	p.WriteHeader(200)
	p.srcs = append(p.srcs, src)
	return p.body.ReadFrom(src)
}

// A large file that is not compressed (a type off the list, or a client
// without Accept-Encoding) still reaches net/http's ReadFrom as a section
// of the open file, through the access log and the compressor, so the
// edge connection's sendfile is kept.
func TestCompress_UncompressedFileKeepsSendfile(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", (300<<10)/16) // above the in-memory limit
	s, dir := newTestServer(t, `access_log {{DIR}}/access.json json;
site _ { listen 127.0.0.1:1; root {{DIR}}; compress zstd br gzip; }`,
		map[string]string{"blob.bin": big, "big.html": big})
	for _, c := range []struct{ path, ae string }{
		{"/blob.bin", "gzip, br, zstd"},
		{"/big.html", ""},
	} {
		p := &readFromProbe{hdr: http.Header{}}
		r := httptest.NewRequest("GET", c.path, nil)
		if c.ae != "" {
			r.Header.Set("Accept-Encoding", c.ae)
		}
		(&listenerHandler{srv: s, addr: "127.0.0.1:1"}).ServeHTTP(p, r)
		if p.status != 200 || p.hdr.Get("Content-Encoding") != "" || p.body.String() != big {
			t.Fatalf("%s: status %d Content-Encoding %q, %d bytes", c.path, p.status, p.hdr.Get("Content-Encoding"), p.body.Len())
		}
		if len(p.srcs) != 1 {
			t.Fatalf("%s: ReadFrom called %d times, want once", c.path, len(p.srcs))
		}
		sr, ok := p.srcs[0].(*io.SectionReader)
		if !ok {
			t.Fatalf("%s: ReadFrom got %T, want *io.SectionReader over the file", c.path, p.srcs[0])
		}
		if ra, _, _ := sr.Outer(); ra == nil {
			t.Errorf("%s: ReadFrom got a section of nothing", c.path)
		} else if _, ok := ra.(*os.File); !ok {
			t.Errorf("%s: ReadFrom got a section of %T, want *os.File", c.path, ra)
		}
	}
	_ = s.logs.Close()
	b, err := os.ReadFile(filepath.Join(dir, "access.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), fmt.Sprintf(`"bytes":%d`, len(big))); n != 2 {
		t.Errorf("access log counts the sent bytes: %d of 2 lines say %d\n%s", n, len(big), b)
	}
}

// The access log stays outermost: it records the compressed bytes that
// were sent, not the handler's.
func TestCompress_AccessLogCountsSentBytes(t *testing.T) {
	body := page(16 << 10)
	s, dir := newTestServer(t, `access_log {{DIR}}/access.json json;
site _ { listen 127.0.0.1:1; root {{DIR}}; compress gzip; }`, map[string]string{"page.html": body})
	w := get(s, "127.0.0.1:1", "GET", "/page.html", map[string]string{"Accept-Encoding": "gzip"})
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", w.Header().Get("Content-Encoding"))
	}
	_ = s.logs.Close()
	b, err := os.ReadFile(filepath.Join(dir, "access.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`"bytes":%d,`, w.Body.Len()); !strings.Contains(string(b), want) {
		t.Errorf("access log %s lacks %s (the compressed size)", b, want)
	}
}

// Without compress the location holds no compressor, so nothing wraps
// its responses: compression off costs nothing per request.
func TestCompress_OffInstallsNothing(t *testing.T) {
	s, _ := newTestServer(t, `site _ { listen 127.0.0.1:1; root {{DIR}}; location /z/ { compress gzip; } }`, nil)
	site := s.router.Load().byAddr["127.0.0.1:1"].def
	if l := site.match("/"); l == nil || l.compress != nil {
		t.Errorf("location / has a compressor without compress")
	}
	if l := site.match("/z/"); l == nil || l.compress == nil {
		t.Errorf("location /z/ has no compressor")
	}
}

// conf checks compress values itself (tandem check does not build the
// edge), so its bounds and defaults must be edge/compress's: every value
// conf accepts, compress.New accepts; the level ranges are the same at
// both ends; the defaults agree.
func TestCompress_ConfMatchesPackage(t *testing.T) {
	dir := t.TempDir()
	parse := func(lines string) (*conf.Compress, error) {
		cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte("site _ { listen 127.0.0.1:1; root "+dir+"; compress zstd br gzip;\n"+lines+"\n}"))
		if err != nil {
			return nil, err
		}
		return cfg.Sites[0].Route.Compress, nil
	}
	build := func(lines string) (confErr, pkgErr error) {
		cc, err := parse(lines)
		if err != nil {
			return err, nil
		}
		_, pkgErr = newCompressor(cc)
		return nil, pkgErr
	}
	for alg, rng := range map[string][2]int{"gzip": {1, 9}, "zstd": {1, 22}, "br": {0, 11}} {
		for _, level := range []int{rng[0] - 1, rng[0], rng[1], rng[1] + 1} {
			line := fmt.Sprintf("compress_level %s %d;", alg, level)
			confErr, pkgErr := build(line)
			_, directErr := compress.New(compress.Options{Algorithms: []string{alg}, Levels: map[string]int{alg: level}})
			if (confErr == nil) != (directErr == nil) || pkgErr != nil {
				t.Errorf("%s: conf %v, compress.New %v, via conf %v", line, confErr, directErr, pkgErr)
			}
		}
	}
	for _, typ := range []string{"default", "text/html", "TEXT/*", "application/*+json", "*/*", "font/ttf",
		"text", "*/json", "a/b/c", "application/*+", "application/*json", "te*t/html", "text/**"} {
		confErr, pkgErr := build("compress_types " + typ + ";")
		_, directErr := compress.New(compress.Options{Types: []string{typ}})
		if pkgErr != nil || confErr == nil && directErr != nil {
			t.Errorf("compress_types %s: conf accepts what compress.New refuses: %v / %v", typ, directErr, pkgErr)
		}
	}
	for _, c := range []struct {
		size string
		ok   bool
	}{{"0", true}, {"1m", true}, {"1025k", false}} {
		confErr, pkgErr := build("compress_min_length " + c.size + ";")
		if (confErr == nil) != c.ok || pkgErr != nil {
			t.Errorf("compress_min_length %s: conf %v, compress.New %v", c.size, confErr, pkgErr)
		}
	}
	if _, err := compress.New(compress.Options{MinLength: compress.MaxMinLength + 1}); err == nil {
		t.Error("compress.New accepts more than MaxMinLength; conf's 1m bound is stale")
	}
	cc, err := parse("")
	if err != nil {
		t.Fatal(err)
	}
	if cc.MinLength != compress.DefaultMinLength || len(cc.Types) != 1 || cc.Types[0] != "default" || cc.Levels != nil {
		t.Errorf("conf defaults %+v differ from the package's (min length %d, default types, package levels)", cc, compress.DefaultMinLength)
	}
}
