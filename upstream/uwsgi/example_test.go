package uwsgi_test

import (
	"log"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/tandem-server/tandem/upstream/uwsgi"
)

// A reverse proxy to a uWSGI server on a unix socket, as nginx's
// `uwsgi_pass unix:/run/app.sock;` (uWSGI started with
// `--socket /run/app.sock --buffer-size 65535`).
func ExampleTransport() {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The uwsgi vars carry the client's view; the URL's host is unused.
			pr.Out.Host = pr.In.Host
			// uWSGI takes wsgi.url_scheme from these: never from the client.
			pr.Out.Header.Del("X-Forwarded-Proto")
			pr.Out.Header.Del("X-Forwarded-Ssl")
		},
		Transport: &uwsgi.Transport{
			Network:          "unix",
			Addr:             "/run/app.sock",
			DialTimeout:      5 * time.Second,
			FirstByteTimeout: 60 * time.Second,
		},
	}
	// Compiled, not run (no Output comment): it would serve forever.
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", proxy))
}
