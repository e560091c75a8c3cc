package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// `compress zstd br gzip;` over real HTTP: each client gets the coding it
// asks for (browsers' equal weights go to zstd), the body decodes to the
// file, and a client without Accept-Encoding gets the file as it is.
func TestCompress_RealBinary(t *testing.T) {
	page := "<!doctype html>\n" + strings.Repeat("<p>tandem compresses this paragraph on the fly.</p>\n", 200)
	in := startTandem(t, `
site _ {
    listen 127.0.0.1:0;
    root {{DIR}}/www;
    compress zstd br gzip;
}
`, func(dir string) { writeFile(t, filepath.Join(dir, "www/index.html"), page) })
	c := client()
	for _, tc := range []struct{ ae, want string }{
		{"gzip, deflate, br, zstd", "zstd"},
		{"gzip, deflate, br", "br"},
		{"gzip", "gzip"},
		{"", ""},
	} {
		hdr := map[string]string{}
		if tc.ae != "" {
			hdr["Accept-Encoding"] = tc.ae
		}
		r := do(t, c, "GET", in.url("/"), hdr)
		if r.status != 200 || r.header.Get("Content-Encoding") != tc.want || !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: %d, Content-Encoding %q, Vary %q; want 200, %q, Accept-Encoding",
				tc.ae, r.status, r.header.Get("Content-Encoding"), r.header.Get("Vary"), tc.want)
			continue
		}
		var dec io.Reader = strings.NewReader(r.body)
		switch tc.want {
		case "zstd":
			zr, err := zstd.NewReader(dec)
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			dec = zr
		case "br":
			dec = brotli.NewReader(dec)
		case "gzip":
			zr, err := gzip.NewReader(dec)
			if err != nil {
				t.Fatal(err)
			}
			dec = zr
		}
		plain, err := io.ReadAll(dec)
		if err != nil || string(plain) != page {
			t.Errorf("Accept-Encoding %q: decoded %d bytes (%v), want the page's %d", tc.ae, len(plain), err, len(page))
		}
		if tc.want != "" && len(r.body) > len(page)/4 {
			t.Errorf("%s: %d bytes on the wire for a %d-byte page", tc.want, len(r.body), len(page))
		}
	}
}
