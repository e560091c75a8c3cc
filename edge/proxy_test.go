package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/upstream"
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

// A reload that leaves an upstream block unchanged keeps its group, so a
// server marked down stays down; a changed block starts afresh.
func TestProxy_ReloadKeepsUnchangedUpstreamState(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(backend.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	config := func(failTimeout string) string {
		return `
upstream api {
    server http://` + dead + `;
    server http://` + backend.Listener.Addr().String() + `;
    fail_timeout ` + failTimeout + `;
}
shutdown_timeout 10ms;
site _ {
    listen 127.0.0.1:0;
    location / { proxy api; }
    location = /status { upstream_status; }
}`
	}
	s, dir := newTestServer(t, config("1h"), nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	addr := s.Addrs()[0]
	deadIsUp := func() bool {
		_, body := fetch(t, "http://"+addr+"/status", nil)
		var doc struct {
			Upstreams []upstream.GroupStatus `json:"upstreams"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Upstreams) != 1 {
			t.Fatalf("status %q: %v", body, err)
		}
		for _, sv := range doc.Upstreams[0].Servers {
			if strings.Contains(sv.URL, dead) {
				return sv.Up
			}
		}
		t.Fatalf("no %s in %s", dead, body)
		return false
	}
	// Round robin reaches the dead server within two requests; the
	// refused connection is retried on the live one and marks it down.
	for range 2 {
		if resp, _ := fetch(t, "http://"+addr+"/", nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if deadIsUp() {
		t.Fatal("the refused server is not marked down")
	}
	reload := func(cfgText string) {
		t.Helper()
		cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(cfgText))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}
	reload(config("1h"))
	if deadIsUp() {
		t.Fatal("an unchanged upstream lost its health state on reload")
	}
	// The old router is released after shutdown_timeout; the group it
	// shared must keep running for the new one.
	deadline := time.Now().Add(5 * time.Second)
	for s.groups.holders() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the old router never released the shared group (%d holders)", s.groups.holders())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp, _ := fetch(t, "http://"+addr+"/", nil); resp.StatusCode != 200 || deadIsUp() {
		t.Fatalf("after the old router closed: status %d, dead server up %v", resp.StatusCode, deadIsUp())
	}
	reload(config("30m"))
	if !deadIsUp() {
		t.Fatal("a changed upstream kept the old group")
	}
}

// holders counts the router holds on all groups.
func (gr *groupRegistry) holders() int {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	n := 0
	for _, r := range gr.refs {
		n += r
	}
	return n
}
