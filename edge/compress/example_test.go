package compress_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/tandem-server/tandem/edge/compress"
)

// A location's handler is wrapped once at config load; every response it
// writes is then negotiated and, where it pays, compressed.
func ExampleCompressor_Wrap() {
	c, err := compress.New(compress.Options{
		Algorithms: []string{"zstd", "br", "gzip"}, // compress zstd br gzip;
		Levels:     map[string]int{"gzip": 6},      // compress_level gzip 6;
		MinLength:  256,                            // compress_min_length 256;
	})
	if err != nil {
		panic(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[`+strings.Repeat(`{"name":"tandem"},`, 50)+`{}]}`)
	})
	h := c.Wrap(app)

	req := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	dec, _ := zstd.NewReader(rec.Body)
	defer dec.Close()
	body, _ := io.ReadAll(dec)
	fmt.Println(rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"), len(body))
	// Output: zstd Accept-Encoding 914
}
