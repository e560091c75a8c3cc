package static_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/tandem-server/tandem/static"
)

// One Cache per server, one Handler per location; edge calls Lookup for
// try_files and Serve, handling the status Serve hands back.
func Example() {
	root, _ := os.MkdirTemp("", "www")
	defer os.RemoveAll(root)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<h1>hi</h1>"), 0o644)

	cache := static.NewCache(static.CacheConfig{})
	defer cache.Close()
	h, err := static.New(static.Options{Root: root}, cache)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()

	fmt.Println(h.Lookup("/"), h.Lookup("/index.html"), h.Lookup("/missing"))

	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	if code := h.Serve(w, r, r.URL.Path); code != 0 {
		http.Error(w, http.StatusText(code), code) // edge: error_page
	}
	fmt.Println(w.Code, w.Header().Get("Content-Type"), w.Body.String())

	w = httptest.NewRecorder()
	fmt.Println(h.Serve(w, httptest.NewRequest("GET", "/missing", nil), "/missing"))
	// Output:
	// dir file notfound
	// 200 text/html; charset=utf-8 <h1>hi</h1>
	// 404
}
