package cache_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tandem-server/tandem/edge/cache"
)

// A location's handler behind the cache: the app says nothing about
// caching, so `cache 10m;` (Policy.DefaultTTL) decides.
func ExampleCache_Wrap() {
	c, err := cache.New(cache.Options{MaxSize: 32 << 20})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})
	h, err := c.Wrap(app, cache.Policy{DefaultTTL: 10 * time.Minute})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 2 {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Header.Get("X-Cache"))
	}
	// Output:
	// MISS
	// HIT
}
