// Command barehandler is the "bare Go handler" reference for bench/static.sh:
// the fastest thing net/http can do for a small response — write a fixed,
// in-memory body with no file system, routing, logging or header logic.
// tandem's 1 KiB static-file throughput is compared against it to show how
// much the file-serving path costs on top of net/http itself.
//
// With -tls-cert and -tls-key it serves HTTPS instead, with net/http's
// defaults (HTTP/2 negotiated by ALPN, HTTP/1.1 otherwise): the reference
// for bench/tls.sh and bench/h2spec.sh.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8082", "address to listen on")
	size := flag.Int("size", 1024, "response body size in bytes")
	certFile := flag.String("tls-cert", "", "serve HTTPS (and HTTP/2) with this PEM certificate (needs -tls-key)")
	keyFile := flag.String("tls-key", "", "PEM private key for -tls-cert")
	flag.Parse()

	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		// A single Write smaller than net/http's 2 KiB chunking buffer makes
		// the server compute Content-Length itself, as it would for a
		// typical small handler. For larger sizes set it explicitly so the
		// response is not chunked (wrk and the length check expect a length).
		if len(body) > 2048 {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.Write(body)
	})

	if (*certFile == "") != (*keyFile == "") {
		log.Fatal("barehandler: -tls-cert and -tls-key go together")
	}
	if *certFile != "" {
		// ListenAndServeTLS with no TLSConfig: Go's own defaults, h2 included.
		log.Printf("barehandler: %d-byte body on https://%s/", *size, *listen)
		log.Fatal(http.ListenAndServeTLS(*listen, *certFile, *keyFile, h))
	}
	log.Printf("barehandler: %d-byte body on http://%s/", *size, *listen)
	log.Fatal(http.ListenAndServe(*listen, h))
}
