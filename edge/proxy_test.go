package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startEdge parses config, starts its listeners and returns the first
// bound address.
func startEdge(t *testing.T, config string, files map[string]string) string {
	t.Helper()
	s, _ := newTestServer(t, config, files)
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	return s.Addrs()[0]
}

func fetch(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v // the client takes Host from here, not Header
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// A location with `proxy` forwards to the upstream, with proxy_set_header
// values expanded per request, and the upstream's answer passes through.
func TestProxy_ForwardsThroughLocation(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		w.Header().Set("X-Seen-Real-IP", r.Header.Get("X-Real-IP"))
		w.Header().Set("X-Seen-Host", r.Host)
		fmt.Fprint(w, "from backend")
	}))
	t.Cleanup(backend.Close)
	addr := startEdge(t, `
site example.test {
    listen 127.0.0.1:0;
    location /api/ {
        proxy http://`+backend.Listener.Addr().String()+`;
        proxy_set_header X-Real-IP $remote_addr;
    }
    return 200 "edge";
}`, nil)
	resp, body := fetch(t, "http://"+addr+"/api/items?x=1", map[string]string{"Host": "example.test"})
	if resp.StatusCode != 200 || body != "from backend" {
		t.Fatalf("got %d %q, want 200 from backend", resp.StatusCode, body)
	}
	for h, want := range map[string]string{"X-Seen-Path": "/api/items?x=1", "X-Seen-Real-IP": "127.0.0.1", "X-Seen-Host": "example.test"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if _, body := fetch(t, "http://"+addr+"/other", nil); body != "edge" {
		t.Errorf("non-proxied location answered %q", body)
	}
}

// When no upstream answers, the edge returns 502 itself, so error_page
// can replace it with the site's own page.
func TestProxy_DownUpstreamUsesErrorPage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	addr := startEdge(t, `
site _ {
    listen 127.0.0.1:0;
    root {{DIR}};
    error_page 502 /oops.html;
    location / { proxy http://`+dead+`; }
    location = /oops.html { static; }
}`, map[string]string{"oops.html": "sorry, try later"})
	resp, body := fetch(t, "http://"+addr+"/", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "sorry") {
		t.Fatalf("got %d %q, want 502 with the error page", resp.StatusCode, body)
	}
}

// upstream_status lists every upstream group with its servers.
func TestProxy_StatusEndpoint(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(backend.Close)
	addr := startEdge(t, `
upstream api {
    server http://`+backend.Listener.Addr().String()+`;
}
site _ {
    listen 127.0.0.1:0;
    location / { proxy api; }
    location = /status { upstream_status; }
}`, nil)
	resp, body := fetch(t, "http://"+addr+"/status", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		Upstreams []json.RawMessage `json:"upstreams"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, body)
	}
	if len(doc.Upstreams) != 1 || !strings.Contains(body, backend.Listener.Addr().String()) {
		t.Fatalf("status does not list the upstream and its server:\n%s", body)
	}
}
