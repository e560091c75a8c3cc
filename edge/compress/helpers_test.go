package compress

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var allAlgorithms = []string{"zstd", "br", "gzip"}

// newDecoder wraps r in the real decoder for alg.
func newDecoder(t testing.TB, alg string, r io.Reader) io.ReadCloser {
	t.Helper()
	switch alg {
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
		return zr.IOReadCloser()
	case "br":
		return io.NopCloser(brotli.NewReader(r))
	}
	t.Fatalf("no decoder for %q", alg)
	return nil
}

// decode returns body decoded per its Content-Encoding ("" = identity).
func decode(t testing.TB, enc string, body []byte) []byte {
	t.Helper()
	if enc == "" {
		return body
	}
	d := newDecoder(t, enc, bytes.NewReader(body))
	defer d.Close()
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return out
}

// htmlPage builds a deterministic HTML page of about n bytes that
// compresses like real markup: gzip-5 takes it to ~29%, as it does Go's
// own doc/go_spec.html. Words are made of syllables with a skewed
// frequency, so matches are neither trivial nor rare.
func htmlPage(n int) []byte {
	syl := strings.Fields("ka to re mi sun del par o e tion al in ver con stru li ne ab ser qu ent ing ph ra ble ex pro an ty er")
	rng := rand.New(rand.NewSource(1))
	words := make([]string, 2000)
	for i := range words {
		var w strings.Builder
		for j := 0; j < 1+rng.Intn(4); j++ {
			w.WriteString(syl[rng.Intn(len(syl))])
		}
		words[i] = w.String()
	}
	word := func() string { // low indexes far more often, as in prose
		return words[int(float64(len(words))*rng.Float64()*rng.Float64()*rng.Float64())]
	}
	var b bytes.Buffer
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tandem</title>" +
		"<link rel=\"stylesheet\" href=\"/static/site.css\"></head>\n<body>\n")
	for i := 0; b.Len() < n-32; i++ {
		fmt.Fprintf(&b, "<div class=\"post\" id=\"p%d\"><h2><a href=\"/posts/%d\">", i, rng.Intn(100000))
		for j := 0; j < 3+rng.Intn(6); j++ {
			b.WriteString(word())
			b.WriteByte(' ')
		}
		b.WriteString("</a></h2>\n<p>")
		for j := 0; j < 20+rng.Intn(60); j++ {
			b.WriteString(word())
			if rng.Intn(12) == 0 {
				b.WriteByte(',')
			}
			b.WriteByte(' ')
		}
		b.WriteString("</p></div>\n")
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

func mustNew(t testing.TB, o Options) *Compressor {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// serve runs h wrapped by c for req and returns the recorded response.
func serve(c *Compressor, h http.HandlerFunc, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c.Wrap(h).ServeHTTP(rec, req)
	return rec
}

func get(target, acceptEncoding string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if acceptEncoding != "" {
		r.Header.Set("Accept-Encoding", acceptEncoding)
	}
	return r
}

// body writes b with the given type, and Content-Length when known.
func body(ctype string, b []byte, withLength bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ctype != "" {
			w.Header().Set("Content-Type", ctype)
		}
		if withLength {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		}
		w.Write(b)
	}
}
