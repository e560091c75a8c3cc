package compress

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestNever pins every case where a response must go out untouched (no
// Content-Encoding added, body byte-identical), and whether it still says
// Vary: Accept-Encoding.
func TestNever(t *testing.T) {
	page := htmlPage(8 << 10)
	tests := []struct {
		name     string
		req      *http.Request
		h        http.HandlerFunc
		wantVary bool
		keepCE   string // a Content-Encoding the handler set itself
	}{
		{
			name: "HEAD has no body", wantVary: true,
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodHead, "/", nil)
				r.Header.Set("Accept-Encoding", "gzip")
				return r
			}(),
			h: body("text/html", page, true),
		},
		{
			name: "204 has no body", req: get("/", "gzip"),
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusNoContent)
			},
		},
		{
			name: "Range request", req: func() *http.Request {
				r := get("/", "gzip")
				r.Header.Set("Range", "bytes=0-99")
				return r
			}(), wantVary: true,
			h: body("text/html", page, true), // the handler ignored the range: still identity
		},
		{
			name: "206 response", req: get("/", "gzip"), wantVary: true,
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(page)-1, len(page)*2))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(page)
			},
		},
		{
			name: "already encoded (precompressed sidecar)", req: get("/", "gzip"), wantVary: true, keepCE: "br",
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Content-Encoding", "br")
				w.Write(page) // stands in for the .br bytes
			},
		},
		{
			name: "Cache-Control: no-transform", req: get("/", "gzip"),
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "public, no-transform, max-age=60")
				w.Header().Set("Content-Type", "text/html")
				w.Write(page)
			},
		},
		{name: "type not allowed", req: get("/", "gzip"), h: body("image/png", page, true)},
		{name: "woff2 not allowed", req: get("/", "gzip"), h: body("font/woff2", page, false)},
		{
			// The key present with no value: net/http does not sniff either.
			name: "empty Content-Type", req: get("/", "gzip"),
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil
				w.Write(page)
			},
		},
		{name: "known length below minimum", req: get("/", "gzip"), wantVary: true, h: body("text/html", page[:1023], true)},
		{name: "unknown length below minimum", req: get("/", "gzip"), wantVary: true, h: body("text/html", page[:1023], false)},
		{name: "empty body", req: get("/", "gzip"), wantVary: true, h: body("text/html", nil, false)},
		{name: "no Accept-Encoding", req: get("/", ""), wantVary: true, h: body("text/html", page, true)},
		{name: "only unknown codings", req: get("/", "compress, deflate"), wantVary: true, h: body("text/html", page, true)},
		{name: "identity preferred", req: get("/", "gzip;q=0.5, identity"), wantVary: true, h: body("text/html", page, true)},
		{name: "all codings refused", req: get("/", "*;q=0"), wantVary: true, h: body("text/html", page, true)},
	}
	c := mustNew(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(c, tc.h, tc.req)
			res := rec.Result()
			if ce := res.Header.Get("Content-Encoding"); ce != tc.keepCE {
				t.Errorf("Content-Encoding = %q, want %q", ce, tc.keepCE)
			}
			if tc.req.Method != http.MethodHead && rec.Code != http.StatusNoContent {
				want := page
				switch tc.name {
				case "known length below minimum", "unknown length below minimum":
					want = page[:1023]
				case "empty body":
					want = nil
				}
				if !bytes.Equal(rec.Body.Bytes(), want) {
					t.Errorf("body changed: %d bytes, want %d", rec.Body.Len(), len(want))
				}
			}
			if got := hasToken(res.Header["Vary"], "Accept-Encoding"); got != tc.wantVary {
				t.Errorf("Vary: Accept-Encoding present = %v, want %v (Vary %q)", got, tc.wantVary, res.Header["Vary"])
			}
		})
	}
}

// TestCompressed_Headers pins what a compressed response looks like, for
// every algorithm and with known and unknown lengths: Content-Encoding
// set, Content-Length and Accept-Ranges gone, Vary added, ETag weakened,
// and the body decodes to the original.
func TestCompressed_Headers(t *testing.T) {
	page := htmlPage(32 << 10)
	c := mustNew(t, Options{})
	for _, alg := range allAlgorithms {
		for _, known := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/known=%v", alg, known), func(t *testing.T) {
				h := func(w http.ResponseWriter, r *http.Request) {
					hdr := w.Header()
					hdr.Set("Content-Type", "text/html; charset=utf-8")
					hdr.Set("Etag", `"v1"`)
					hdr.Set("Accept-Ranges", "bytes")
					if known {
						hdr.Set("Content-Length", fmt.Sprint(len(page)))
					}
					w.Write(page[:100]) // several writes, the first below the minimum
					w.Write(page[100:])
				}
				rec := serve(c, h, get("/", alg))
				res := rec.Result()
				if got := res.Header.Get("Content-Encoding"); got != alg {
					t.Fatalf("Content-Encoding = %q, want %q", got, alg)
				}
				for _, k := range []string{"Content-Length", "Accept-Ranges"} {
					if v, ok := res.Header[k]; ok {
						t.Errorf("%s = %q, want it removed", k, v)
					}
				}
				if got := res.Header.Get("Etag"); got != `W/"v1"` {
					t.Errorf("ETag = %q, want W/\"v1\"", got)
				}
				if got := res.Header["Vary"]; !slices.Equal(got, []string{"Accept-Encoding"}) {
					t.Errorf("Vary = %q", got)
				}
				if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
					t.Errorf("Content-Type = %q, want it kept", got)
				}
				if out := decode(t, alg, rec.Body.Bytes()); !bytes.Equal(out, page) {
					t.Errorf("decoded %d bytes, want the %d-byte page", len(out), len(page))
				}
				if rec.Body.Len() >= len(page)/2 {
					t.Errorf("compressed to %d of %d bytes: not compressing?", rec.Body.Len(), len(page))
				}
			})
		}
	}
}

// TestCompressed_AnyStatusWithBody: error pages are compressed too.
func TestCompressed_AnyStatusWithBody(t *testing.T) {
	page := htmlPage(4 << 10)
	c := mustNew(t, Options{})
	rec := serve(c, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		w.Write(page)
	}, get("/", "gzip"))
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("status %d, Content-Encoding %q; want 404 gzip", rec.Code, rec.Header().Get("Content-Encoding"))
	}
	if !bytes.Equal(decode(t, "gzip", rec.Body.Bytes()), page) {
		t.Error("body does not round-trip")
	}
}

// TestTypes pins the allow-list: defaults, parameters ignored, case,
// wildcards and suffix patterns.
func TestTypes(t *testing.T) {
	page := htmlPage(4 << 10)
	tests := []struct {
		types []string
		ctype string
		want  bool
	}{
		{nil, "text/html", true},
		{nil, "TEXT/HTML; Charset=UTF-8", true},
		{nil, "text/css", true},
		{nil, "text/event-stream", true},
		{nil, "application/json", true},
		{nil, "application/problem+json", true},
		{nil, "application/ld+json; profile=x", true},
		{nil, "application/javascript", true},
		{nil, "application/xml", true},
		{nil, "application/rss+xml", true},
		{nil, "image/svg+xml", true},
		{nil, "application/wasm", true},
		{nil, "font/ttf", true},
		{nil, "image/png", false},
		{nil, "image/jpeg", false},
		{nil, "font/woff2", false},
		{nil, "application/octet-stream", false},
		{nil, "application/zip", false},
		{nil, "video/mp4", false},
		{nil, "textual/html", false}, // "text/*" is a whole type, not a prefix
		{[]string{"application/x-custom"}, "application/x-custom", true},
		{[]string{"application/x-custom"}, "text/html", false},
		{[]string{"application/*+yaml"}, "application/openapi+yaml", true},
		{[]string{"application/*+yaml"}, "application/yaml", false},
		{[]string{"*/*"}, "image/png", true},
		{[]string{"default", "application/x-ndjson"}, "application/x-ndjson", true},
		{[]string{"default", "application/x-ndjson"}, "text/html", true},
		{[]string{"default", "application/x-ndjson"}, "image/png", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v/%s", tc.types, tc.ctype), func(t *testing.T) {
			c := mustNew(t, Options{Types: tc.types})
			rec := serve(c, body(tc.ctype, page, true), get("/", "gzip"))
			if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tc.want {
				t.Errorf("compressed = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestVary_Merge: Accept-Encoding joins an existing Vary once, never
// twice, never beside "*", and the handler's own slice is not written to.
func TestVary_Merge(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{nil, []string{"Accept-Encoding"}},
		{[]string{"Origin"}, []string{"Origin", "Accept-Encoding"}},
		{[]string{"Origin", "Cookie"}, []string{"Origin", "Cookie", "Accept-Encoding"}},
		{[]string{"accept-encoding"}, []string{"accept-encoding"}},
		{[]string{"Origin, Accept-Encoding"}, []string{"Origin, Accept-Encoding"}},
		{[]string{"Origin", " ACCEPT-ENCODING "}, []string{"Origin", " ACCEPT-ENCODING "}},
		{[]string{"*"}, []string{"*"}},
		{[]string{"Origin, *"}, []string{"Origin, *"}},
		{[]string{"Accept-Encoding-X"}, []string{"Accept-Encoding-X", "Accept-Encoding"}},
	}
	page := htmlPage(4 << 10)
	c := mustNew(t, Options{})
	for _, tc := range tests {
		for _, ae := range []string{"gzip", ""} { // compressed and not
			t.Run(fmt.Sprintf("%q/ae=%q", tc.in, ae), func(t *testing.T) {
				shared := make([]string, len(tc.in), len(tc.in)+4) // spare capacity, as a prepared slice might have
				copy(shared, tc.in)
				rec := serve(c, func(w http.ResponseWriter, r *http.Request) {
					if tc.in != nil {
						w.Header()["Vary"] = shared
					}
					w.Header().Set("Content-Type", "text/html")
					w.Write(page)
				}, get("/", ae))
				if got := rec.Header()["Vary"]; !slices.Equal(got, tc.want) {
					t.Errorf("Vary = %q, want %q", got, tc.want)
				}
				if got := shared[:cap(shared)][len(tc.in):]; slices.ContainsFunc(got, func(s string) bool { return s != "" }) {
					t.Errorf("handler's Vary slice written past its length: %q", got)
				}
			})
		}
	}
}

// TestETag: encoded variants get a weak ETag (W/ prefix); identity
// responses keep the strong one; weak and odd tags are left alone.
func TestETag(t *testing.T) {
	page := htmlPage(4 << 10)
	tests := []struct {
		name, ae, in, want string
		size               int
	}{
		{"strong becomes weak", "gzip", `"abc"`, `W/"abc"`, len(page)},
		{"weak stays weak", "gzip", `W/"abc"`, `W/"abc"`, len(page)},
		{"malformed left alone", "gzip", `abc`, `abc`, len(page)},
		{"absent stays absent", "gzip", "", "", len(page)},
		{"identity keeps strong", "", `"abc"`, `"abc"`, len(page)},
		{"below minimum keeps strong", "gzip", `"abc"`, `"abc"`, 100},
	}
	c := mustNew(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(c, func(w http.ResponseWriter, r *http.Request) {
				if tc.in != "" {
					w.Header().Set("ETag", tc.in)
				}
				w.Header().Set("Content-Type", "text/html")
				w.Write(page[:tc.size])
			}, get("/", tc.ae))
			if got := rec.Header().Get("Etag"); got != tc.want {
				t.Errorf("ETag = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNotModified: a 304 has no body, but carries the Vary and the weak
// validator its 200 would have (RFC 9110 §15.4.5); without Content-Type
// the type comes from the path's extension.
func TestNotModified(t *testing.T) {
	tests := []struct {
		name, path, ae, ctype string
		wantVary              bool
		wantETag              string
	}{
		{"compressible path", "/a/index.html", "br", "", true, `W/"x"`},
		{"compressible Content-Type", "/api/items", "br", "application/json", true, `W/"x"`},
		{"compressible, no Accept-Encoding", "/a/index.html", "", "", true, `"x"`},
		{"image path", "/logo.png", "br", "", false, `"x"`},
		{"no extension, no type", "/api/items", "br", "", false, `"x"`},
	}
	c := mustNew(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(c, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Etag", `"x"`)
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(http.StatusNotModified)
			}, get(tc.path, tc.ae))
			if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
				t.Fatalf("status %d with %d body bytes", rec.Code, rec.Body.Len())
			}
			if rec.Header().Get("Content-Encoding") != "" {
				t.Error("304 got a Content-Encoding")
			}
			if got := hasToken(rec.Header()["Vary"], "Accept-Encoding"); got != tc.wantVary {
				t.Errorf("Vary present = %v, want %v", got, tc.wantVary)
			}
			if got := rec.Header().Get("Etag"); got != tc.wantETag {
				t.Errorf("ETag = %q, want %q", got, tc.wantETag)
			}
		})
	}
}

// TestMinLength pins the threshold with known and unknown lengths, the
// default, a custom value and "no minimum".
func TestMinLength(t *testing.T) {
	page := htmlPage(4 << 10)
	tests := []struct {
		name  string
		min   int64
		size  int
		known bool
		want  bool
	}{
		{"default, known, one below", 0, DefaultMinLength - 1, true, false},
		{"default, known, exactly", 0, DefaultMinLength, true, true},
		{"default, unknown, one below", 0, DefaultMinLength - 1, false, false},
		{"default, unknown, exactly", 0, DefaultMinLength, false, true},
		{"default, unknown, well above", 0, 4000, false, true},
		{"custom 100, known", 100, 100, true, true},
		{"custom 100, unknown, below", 100, 99, false, false},
		{"custom 100, unknown", 100, 100, false, true},
		{"no minimum, 10 bytes known", -1, 10, true, true},
		{"no minimum, 10 bytes unknown", -1, 10, false, true},
		{"no minimum, empty body", -1, 0, false, false},
		{"no minimum, Content-Length 0", -1, 0, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, Options{MinLength: tc.min})
			want := page[:tc.size]
			h := func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				if tc.known {
					w.Header().Set("Content-Length", fmt.Sprint(tc.size))
				}
				for p := want; len(p) > 0; { // 7-byte writes: the decision spans writes
					n := min(7, len(p))
					w.Write(p[:n])
					p = p[n:]
				}
			}
			rec := serve(c, h, get("/", "zstd"))
			got := rec.Header().Get("Content-Encoding") == "zstd"
			if got != tc.want {
				t.Fatalf("compressed = %v, want %v", got, tc.want)
			}
			enc := ""
			if got {
				enc = "zstd"
			}
			if out := decode(t, enc, rec.Body.Bytes()); !bytes.Equal(out, want) {
				t.Errorf("body: %d bytes, want %d", len(out), len(want))
			}
		})
	}
}

// TestSniff: without Content-Type the body is sniffed as net/http would,
// the type is set explicitly, and the allow-list applies to it.
func TestSniff(t *testing.T) {
	page := htmlPage(4 << 10)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 4<<10)...)
	tests := []struct {
		name      string
		body      []byte
		wantType  string
		wantCompr bool
	}{
		{"html", page, "text/html; charset=utf-8", true},
		{"png", png, "image/png", false},
		{"short html", page[:600], "text/html; charset=utf-8", false},
	}
	c := mustNew(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(c, func(w http.ResponseWriter, r *http.Request) { w.Write(tc.body) }, get("/", "gzip"))
			if got := rec.Header().Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
			if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tc.wantCompr {
				t.Errorf("compressed = %v, want %v", got, tc.wantCompr)
			}
		})
	}
}

// TestNew_Options: defaults fill empty fields; bad values fail at config
// load with a message naming the problem.
func TestNew_Options(t *testing.T) {
	c := mustNew(t, Options{})
	if got := c.Algorithms(); !slices.Equal(got, DefaultAlgorithms) {
		t.Errorf("default algorithms = %v", got)
	}
	bad := []struct {
		o    Options
		want string
	}{
		{Options{Algorithms: []string{"deflate"}}, "unknown algorithm"},
		{Options{Algorithms: []string{"gzip", "gzip"}}, "listed twice"},
		{Options{Levels: map[string]int{"gzip": 10}}, "out of range"},
		{Options{Levels: map[string]int{"gzip": 0}}, "out of range"},
		{Options{Levels: map[string]int{"br": 12}}, "out of range"},
		{Options{Levels: map[string]int{"zstd": 23}}, "out of range"},
		{Options{Levels: map[string]int{"lz4": 1}}, "unknown algorithm"},
		{Options{MinLength: MaxMinLength + 1}, "above the maximum"},
		{Options{Types: []string{"text"}}, "bad type pattern"},
		{Options{Types: []string{"*/html"}}, "bad type pattern"},
		{Options{Types: []string{"text/html; charset=utf-8"}}, "bad type pattern"},
		{Options{Types: []string{"application/x*"}}, "bad type pattern"},
	}
	for _, tc := range bad {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) error = %v, want %q", tc.o, err, tc.want)
		}
	}
	for _, lv := range []map[string]int{{"gzip": 1}, {"gzip": 9}, {"br": 0}, {"br": 11}, {"zstd": 1}, {"zstd": 22}} {
		if _, err := New(Options{Levels: lv}); err != nil {
			t.Errorf("New(Levels %v): %v", lv, err)
		}
	}
}
