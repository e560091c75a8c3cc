// Command fasthello answers every request with a fixed in-memory body over
// github.com/valyala/fasthttp. bench/frontfloor.sh sets it next to
// net/http (bench/barehandler) and nginx, to show what the HTTP/1.1 server
// underneath a front end costs per request when nothing stands behind it.
//
// It is a module of its own so that tandem's go.mod does not take fasthttp
// in for a benchmark: DESIGN.md builds tandem's request path on net/http,
// and this program measures that choice; it does not change it.
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8083", "address to listen on")
	size := flag.Int("size", 13, "response body size in bytes")
	flag.Parse()
	if *size < 0 {
		log.Fatal("fasthello: -size must not be negative")
	}
	// The same bytes as bench/barehandler's body of the same size.
	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	contentType := []byte("text/plain")
	srv := &fasthttp.Server{
		Name: "fasthello",
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.SetContentTypeBytes(contentType)
			ctx.Response.SetBodyRaw(body)
		},
	}
	log.Printf("fasthello: %d-byte body on http://%s/", len(body), *listen)
	if err := srv.ListenAndServe(*listen); err != nil {
		log.Fatalf("fasthello: %v", err)
	}
}
