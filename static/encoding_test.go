package static

import (
	"testing"
)

// TestAccepts_QValues: q=0 refuses, "*" counts, explicit beats "*",
// tokens are case-insensitive and x-gzip means gzip.
func TestAccepts_QValues(t *testing.T) {
	cases := []struct {
		ae     string
		coding string
		want   bool
	}{
		{"gzip", "gzip", true},
		{"GZIP", "gzip", true},
		{"x-gzip", "gzip", true},
		{"gzip;q=0", "gzip", false},
		{"gzip; q=0.000", "gzip", false},
		{"gzip;q=0.001", "gzip", true},
		{"gzip;Q=1", "gzip", true},
		{"br, gzip;q=0", "gzip", false},
		{"deflate", "gzip", false},
		{"*", "zstd", true},
		{"*;q=0", "zstd", false},
		{"*;q=0, zstd", "zstd", true},
		{"zstd;q=0, *", "zstd", false},
		{"identity", "br", false},
		{"", "br", false},
		{"gzip;level=1;q=0.5", "gzip", true},
	}
	for _, c := range cases {
		if got := accepts([]string{c.ae}, c.coding); got != c.want {
			t.Errorf("accepts(%q, %s) = %v; want %v", c.ae, c.coding, got, c.want)
		}
	}
}

// TestServe_Precompressed: sidecars follow Options order among what the
// client accepts, keep the original Content-Type, carry a distinct ETag and
// always Vary on Accept-Encoding.
func TestServe_Precompressed(t *testing.T) {
	root, _ := tree(t)
	for _, m := range cacheModes {
		h := newTestHandler(t, Options{Root: root, Precompressed: []string{"zstd", "br", "gzip"}}, m.cfg)
		cases := []struct {
			name, ae, body, enc string
		}{
			{"None_Identity", "", "console.log('identity');", ""},
			{"ServerOrder_Zstd", "gzip, br, zstd", "ZSTD-BYTES", "zstd"},
			{"Br", "gzip, br", "BR-BYTES", "br"},
			{"QZeroRefuses", "zstd;q=0, br;q=0, gzip", "GZIP-BYTES", "gzip"},
			{"StarCounts", "*", "ZSTD-BYTES", "zstd"},
			{"StarMinusZstd", "*, zstd;q=0", "BR-BYTES", "br"},
			{"NothingUsable_Identity", "deflate", "console.log('identity');", ""},
		}
		etags := map[string]string{}
		for _, c := range cases {
			var w = do(h, "GET", "/app.js")
			if c.ae != "" {
				w = do(h, "GET", "/app.js", "Accept-Encoding", c.ae)
			}
			hd := w.Header()
			if w.Body.String() != c.body || hd.Get("Content-Encoding") != c.enc ||
				hd.Get("Content-Type") != "text/javascript; charset=utf-8" || hd.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s %s: %q enc %q headers %v", m.name, c.name, w.Body.String(), hd.Get("Content-Encoding"), hd)
			}
			if prev, ok := etags[hd.Get("ETag")]; ok && prev != c.enc {
				t.Errorf("%s: ETag %s shared by %q and %q", m.name, hd.Get("ETag"), prev, c.enc)
			}
			etags[hd.Get("ETag")] = c.enc
		}
		// A file without sidecars has one representation: no Vary.
		if v := do(h, "GET", "/hello.txt").Header().Get("Vary"); v != "" {
			t.Errorf("%s: Vary on plain file = %q, want none", m.name, v)
		}
		// A sidecar's ETag validates only that encoding.
		zw := do(h, "GET", "/app.js", "Accept-Encoding", "zstd")
		etag := zw.Header().Get("ETag")
		if w := do(h, "GET", "/app.js", "Accept-Encoding", "zstd", "If-None-Match", etag); w.Code != 304 {
			t.Errorf("%s: zstd revalidation = %d", m.name, w.Code)
		}
		if w := do(h, "GET", "/app.js", "If-None-Match", etag); w.Code != 200 {
			t.Errorf("%s: identity with zstd ETag = %d", m.name, w.Code)
		}
		// Ranges apply to the sidecar's bytes, as nginx does.
		if w := do(h, "GET", "/app.js", "Accept-Encoding", "gzip", "Range", "bytes=0-3"); w.Code != 206 ||
			w.Body.String() != "GZIP" || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Content-Range") != "bytes 0-3/10" {
			t.Errorf("%s: ranged sidecar = %d %q %v", m.name, w.Code, w.Body.String(), w.Header())
		}
	}
	h := newTestHandler(t, Options{Root: root}, CacheConfig{})
	if w := do(h, "GET", "/app.js", "Accept-Encoding", "gzip"); w.Header().Get("Content-Encoding") != "" || w.Header().Get("Vary") != "" {
		t.Errorf("Precompressed off still negotiates: %v", w.Header())
	}
}
