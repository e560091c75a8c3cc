package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// `cache 1m;` in front of a proxy in the real binary: the second GET is a
// hit the upstream never sees; PURGE from loopback empties it, and the
// GET after is a miss again. A reload keeps the stored entry, and one
// that changes the store block says its settings wait for a restart.
func TestCache_RealBinary(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fmt.Fprintf(w, "rendered %s", r.URL.Path)
	}))
	t.Cleanup(up.Close)
	conf := `
cache { max_size 8m; }
site _ {
    listen 127.0.0.1:0;
    location / { cache 1m; proxy http://` + up.Listener.Addr().String() + `; }
}
`
	in := startTandem(t, conf, nil)
	c := client()
	for i, want := range []string{"MISS", "HIT"} {
		r := do(t, c, "GET", in.url("/blog/hello"), nil)
		if r.status != 200 || r.body != "rendered /blog/hello" || r.header.Get("X-Cache") != want {
			t.Fatalf("GET %d: %d %q X-Cache %q, want 200 %s", i+1, r.status, r.body, r.header.Get("X-Cache"), want)
		}
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("upstream saw %d requests after two GETs, want 1", got)
	}
	if r := do(t, c, "PURGE", in.url("/blog/hello"), nil); r.status != 200 || r.body != "{\"purged\":1}\n" {
		t.Fatalf("PURGE: %d %q, want 200 {\"purged\":1}", r.status, r.body)
	}
	if r := do(t, c, "GET", in.url("/blog/hello"), nil); r.header.Get("X-Cache") != "MISS" || n.Load() != 2 {
		t.Errorf("GET after PURGE: X-Cache %q, upstream %d requests; want MISS, 2", r.header.Get("X-Cache"), n.Load())
	}

	writeFile(t, in.conf, strings.Replace(conf, "max_size 8m", "max_size 16m", 1))
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	in.waitLog("its settings apply after a restart", 10*time.Second)
	in.waitLog("reloaded", 10*time.Second)
	if r := do(t, c, "GET", in.url("/blog/hello"), nil); r.header.Get("X-Cache") != "HIT" || n.Load() != 2 {
		t.Errorf("GET after reload: X-Cache %q, upstream %d requests; want HIT, 2", r.header.Get("X-Cache"), n.Load())
	}
}

// `cache on;` in front of an app location in the real binary: the stdlib
// WSGI app says Cache-Control: max-age=60 and counts its calls in a file;
// the second GET is a hit and the app was called once.
func TestCache_AppLocation(t *testing.T) {
	in := startTandem(t, `
app counter {
    wsgi counter:application;
    chdir {{DIR}};
    workers 1;
}
site _ {
    listen 127.0.0.1:0;
    location / { cache on; app counter; }
}
`, func(dir string) {
		writeFile(t, filepath.Join(dir, "counter.py"), `import os

CALLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.txt")


def application(environ, start_response):
    with open(CALLS, "a") as f:
        f.write("x")
    with open(CALLS) as f:
        n = len(f.read())
    body = ("call %d" % n).encode()
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("Cache-Control", "max-age=60"),
        ("Content-Length", str(len(body))),
    ])
    return [body]
`)
	})
	c := client()
	for i, want := range []string{"MISS", "HIT"} {
		r := do(t, c, "GET", in.url("/page"), nil)
		if r.status != 200 || r.body != "call 1" || r.header.Get("X-Cache") != want {
			t.Fatalf("GET %d: %d %q X-Cache %q, want 200 \"call 1\" %s", i+1, r.status, r.body, r.header.Get("X-Cache"), want)
		}
	}
	calls, err := os.ReadFile(filepath.Join(in.dir, "calls.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 {
		t.Errorf("the app was called %d times for two GETs, want 1", len(calls))
	}
}
