package static

import (
	"bytes"
	"net/http"
	"testing"
)

func BenchmarkTmpBareHeaders1K(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<10)
	ct := []string{"application/octet-stream"}
	et := []string{`"1234567890abcdef-400"`}
	lm := []string{"Mon, 06 May 2024 07:08:09 GMT"}
	ar := []string{"bytes"}
	cl := []string{"1024"}
	benchLoopback(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = ct
		h["Etag"] = et
		h["Last-Modified"] = lm
		h["Accept-Ranges"] = ar
		h["Content-Length"] = cl
		w.Write(body)
	}), "/", 1<<10)
}
