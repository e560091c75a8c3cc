package upstream

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-server/tandem/edge/packethint"
)

// captureServer records the last request head it saw.
type captured struct {
	header http.Header
	host   string
}

func captureServer(t *testing.T) (*testServer, chan captured) {
	ch := make(chan captured, 16)
	s := newTestServer(t, "cap", func(w http.ResponseWriter, r *http.Request) {
		ch <- captured{r.Header.Clone(), r.Host}
	})
	return s, ch
}

// X-Forwarded-* and Forwarded describe the real client. A trusted
// peer's values are appended to (For, Forwarded) or kept (Proto, Host);
// anyone else's are replaced.
func TestForwardedHeaders_TrustedAndNot(t *testing.T) {
	s, ch := captureServer(t)
	g := newTestGroup(t, Config{Servers: urls(s)}, nil)
	trusted := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	incoming := map[string]string{
		"X-Forwarded-For":   "1.1.1.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "public.example",
		"Forwarded":         "for=1.1.1.1;proto=https",
		"X-Forwarded-Ssl":   "on",
		"X-Forwarded-Port":  "443",
	}
	for _, tc := range []struct {
		name    string
		url     string
		remote  string
		trusted []netip.Prefix
		in      map[string]string
		want    map[string]string
	}{
		{"untrusted peer replaces", "http://example.com/", "203.0.113.7:5555", nil, incoming, map[string]string{
			"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com",
			"Forwarded": "for=203.0.113.7;host=example.com;proto=http", "X-Forwarded-Ssl": "", "X-Forwarded-Port": "",
		}},
		{"trusted peer appends", "http://example.com/", "203.0.113.7:5555", trusted, incoming, map[string]string{
			"X-Forwarded-For": "1.1.1.1, 203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example",
			"Forwarded":       "for=1.1.1.1;proto=https, for=203.0.113.7;host=example.com;proto=http",
			"X-Forwarded-Ssl": "on", "X-Forwarded-Port": "443",
		}},
		{"trusted peer, nothing incoming", "http://example.com/", "203.0.113.7:5555", trusted, nil, map[string]string{
			"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com",
			"Forwarded": "for=203.0.113.7;host=example.com;proto=http",
		}},
		{"ipv6 over tls", "https://example.com:8443/", "[2001:db8::1]:443", nil, nil, map[string]string{
			"X-Forwarded-For": "2001:db8::1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com:8443",
			"Forwarded": `for="[2001:db8::1]";host="example.com:8443";proto=https`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := g.Handler(HandlerOptions{TrustedProxies: tc.trusted})
			r := httptest.NewRequest(http.MethodGet, tc.url, nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.in {
				r.Header.Set(k, v)
			}
			if _, st := serveRec(h, r); st != 0 {
				t.Fatalf("status %d", st)
			}
			got := <-ch
			for k, v := range tc.want {
				gv := got.header.Values(k)
				if v == "" && len(gv) != 0 || v != "" && (len(gv) != 1 || gv[0] != v) {
					t.Errorf("%s = %q, want %q", k, gv, v)
				}
			}
		})
	}
}

// proxy_set_header runs last: "" deletes, values are expanded, Host
// rewrites the Host sent; without it the client's Host passes through.
func TestSetHeaders_AndHost(t *testing.T) {
	s, ch := captureServer(t)
	g := newTestGroup(t, Config{Servers: urls(s)}, nil)
	expand := func(v string, r *http.Request) string {
		return strings.ReplaceAll(v, "$remote_addr", peerAddr(r.RemoteAddr).String())
	}
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	req, _ := http.NewRequest("GET", front.URL, nil)
	req.Host = "app.example:8080"
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := <-ch
	if got.host != "app.example:8080" {
		t.Fatalf("Host %q, want the client's passed through", got.host)
	}

	// A header name with "_" would reach a WSGI app as the same
	// HTTP_X_FORWARDED_FOR as the real one; it is dropped.
	req, _ = http.NewRequest("GET", front.URL, nil)
	req.Header.Set("X_Forwarded_For", "203.0.113.66")
	resp, err = front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-ch; got.header.Get("X_Forwarded_For") != "" {
		t.Fatalf("underscore header passed upstream: %v", got.header)
	}

	for _, tc := range []struct{ hostValue, want string }{
		{"internal.svc", "internal.svc"},
		{"", strings.TrimPrefix(s.URL, "http://")}, // empty: the server's own address
	} {
		h := g.Handler(HandlerOptions{Expand: expand, SetHeaders: []Header{
			{"x-real-ip", "$remote_addr"}, {"User-Agent", ""}, {"X-Static", "v"},
			{"X-Forwarded-For", "overridden"}, {"host", tc.hostValue},
		}})
		r := httptest.NewRequest("GET", "http://app.example/", nil)
		r.RemoteAddr = "203.0.113.9:1"
		r.Header.Set("User-Agent", "curl/8")
		if _, st := serveRec(h, r); st != 0 {
			t.Fatalf("status %d", st)
		}
		got := <-ch
		if got.host != tc.want {
			t.Errorf("Host %q, want %q", got.host, tc.want)
		}
		for k, v := range map[string]string{"X-Real-Ip": "203.0.113.9", "X-Static": "v", "X-Forwarded-For": "overridden", "User-Agent": ""} {
			if got.header.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, got.header.Get(k), v)
			}
		}
		if _, ok := got.header["User-Agent"]; ok {
			t.Error("User-Agent not removed")
		}
	}
}

// Hop-by-hop headers (RFC 9110 §7.6.1, plus those named in Connection)
// are dropped in both directions; end-to-end ones pass.
func TestHopByHopHeaders_Stripped(t *testing.T) {
	ch := make(chan http.Header, 1)
	s := newTestServer(t, "s", func(w http.ResponseWriter, r *http.Request) {
		ch <- r.Header.Clone()
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End", "yes")
	})
	// Keep-alive on, so "Connection: close" is not the transport's own.
	g := newTestGroup(t, Config{Servers: urls(s), Keepalive: 8}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\n"+
		"Keep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9v\r\nProxy-Connection: keep-alive\r\n"+
		"Te: gzip\r\nUpgrade: foo\r\nX-End: yes\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	up := <-ch
	for _, k := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Upgrade"} {
		if v, ok := up[k]; ok {
			t.Errorf("upstream got hop-by-hop %s: %q", k, v)
		}
	}
	if up.Get("X-End") != "yes" {
		t.Error("end-to-end request header lost")
	}
	for _, k := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("client got hop-by-hop %s: %q", k, v)
		}
	}
	if resp.Header.Get("X-End") != "yes" {
		t.Error("end-to-end response header lost")
	}
}

// Repeated response headers stay separate; a 304 passes with its
// validators and no body.
func TestResponse_SetCookieTwiceAnd304(t *testing.T) {
	s := newTestServer(t, "s", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Add("Set-Cookie", "a=1; Path=/")
		w.Header().Add("Set-Cookie", "b=2; Path=/")
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, "body")
	})
	g := newTestGroup(t, Config{Servers: urls(s)}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	resp, err := front.Client().Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := resp.Header.Values("Set-Cookie"); len(c) != 2 || c[0] != "a=1; Path=/" || c[1] != "b=2; Path=/" {
		t.Fatalf("Set-Cookie %q", c)
	}
	st, _, body := get(t, front.Client(), front.URL, http.Header{"If-None-Match": {`"v1"`}})
	if st != 304 || body != "" {
		t.Fatalf("%d %q, want 304 without body", st, body)
	}
}

// Streams (SSE, chunked) reach the client as the server writes them,
// not when it finishes.
func TestStreaming_ChunksArriveBeforeUpstreamFinishes(t *testing.T) {
	for _, ctype := range []string{"text/event-stream", "text/plain"} {
		t.Run(ctype, func(t *testing.T) {
			release := make(chan struct{})
			s := newTestServer(t, "s", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ctype)
				io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				<-release
				io.WriteString(w, "data: two\n\n")
			})
			g := newTestGroup(t, Config{Servers: urls(s)}, nil)
			front, _ := newFront(t, g.Handler(HandlerOptions{}))
			resp, err := front.Client().Get(front.URL)
			if err != nil {
				close(release)
				t.Fatal(err)
			}
			defer resp.Body.Close()
			line := make(chan string, 1)
			br := bufio.NewReader(resp.Body)
			go func() {
				l, _ := br.ReadString('\n')
				line <- l
			}()
			select {
			case l := <-line:
				if l != "data: one\n" {
					t.Fatalf("first line %q", l)
				}
			case <-time.After(testWait):
				t.Fatal("first event not delivered while the upstream was still sending")
			}
			close(release)
			rest, _ := io.ReadAll(br)
			if string(rest) != "\ndata: two\n\n" {
				t.Fatalf("rest %q", rest)
			}
		})
	}
}

// wsServer is a raw WebSocket-style upgrade endpoint that echoes bytes.
func wsServer(t *testing.T, closed chan struct{}) *testServer {
	return newTestServer(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(conn, brw) // echo until the proxy closes
		close(closed)
	})
}

// dialUpgrade opens a raw upgraded connection through front.
func dialUpgrade(t *testing.T, frontURL string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(frontURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(testWait))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("status %d, Upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	return conn, br
}

func echo(t *testing.T, conn net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	io.WriteString(conn, msg)
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q: got %q, %v", msg, buf, err)
	}
}

// WebSocket upgrades are tunnelled both ways; traffic keeps the tunnel
// open, read_timeout of silence closes it and ends the attempt.
func TestWebSocket_EchoAndIdleTimeout(t *testing.T) {
	closed := make(chan struct{})
	s := wsServer(t, closed)
	idle := 200 * time.Millisecond
	g := newTestGroup(t, Config{Servers: urls(s), ReadTimeout: idle}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	conn, br := dialUpgrade(t, front.URL)
	start := time.Now()
	for i := 0; time.Since(start) < 2*idle; i++ {
		echo(t, conn, br, fmt.Sprintf("ping-%d", i))
		time.Sleep(idle / 8) // activity spaced well inside the idle limit
	}
	if totalActive(g) != 1 {
		t.Fatalf("active %d during tunnel", totalActive(g))
	}
	// Now silence: the proxy closes both sides.
	if n, err := br.ReadByte(); err == nil {
		t.Fatalf("read %q from an idle tunnel", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("idle tunnel was not closed")
	}
	select {
	case <-closed:
	case <-time.After(testWait):
		t.Fatal("upstream side not closed")
	}
	waitFor(t, "attempt released", testWait, func() bool { return totalActive(g) == 0 })
}

// A response that stalls longer than read_timeout is cut off and logged.
func TestReadTimeout_CutsStalledBody(t *testing.T) {
	stall := make(chan struct{})
	s := newTestServer(t, "s", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1")
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(stall) })
	log, logs := observed()
	g := newTestGroup(t, Config{Servers: urls(s), ReadTimeout: 100 * time.Millisecond}, log)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	resp, err := front.Client().Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil || string(body) != "part1" {
		t.Fatalf("body %q err %v: want part1 then an error", body, err)
	}
	if !hasLog(logs, "upstream read timeout", "server", s.URL) {
		t.Fatalf("no read timeout log: %v", logs.All())
	}
	waitFor(t, "attempt released", testWait, func() bool { return totalActive(g) == 0 })
}

// fdsInto counts this process's open files under dir (Linux /proc),
// including unlinked ones.
func fdsInto(t *testing.T, dir string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>10)
	}
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// A 10 MiB body with buffering on is read fully first, spilled to a file
// in SpoolDir (gone afterwards) and sent with a Content-Length.
func TestBody_Buffered10MiBSpillsToDisk(t *testing.T) {
	spoolDir := t.TempDir()
	fdsInto(t, spoolDir) // skips here, not in the handler, without /proc
	data := pattern(10 << 20)
	var spilled atomic.Int64
	s := newTestServer(t, "s", func(w http.ResponseWriter, r *http.Request) {
		spilled.Store(int64(fdsInto(t, spoolDir)))
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %d %x", r.ContentLength, n, h.Sum(nil))
	})
	g := newTestGroup(t, Config{Servers: []Server{{URL: refusedURL(t)}, {URL: s.URL}}}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{Buffering: true, SpoolDir: spoolDir}))
	for range 2 { // round robin: one starts on the refusing server and is retried
		// A reader of unknown length: the client sends it chunked.
		st, body := do2(t, front.Client(), "POST", front.URL, io.MultiReader(bytes.NewReader(data)))
		want := fmt.Sprintf("%d %d %s", len(data), len(data), sum(data))
		if st != 200 || body != want {
			t.Fatalf("%d %q, want %q", st, body, want)
		}
		if spilled.Load() != 1 {
			t.Fatalf("%d spool files open during the upstream request, want 1", spilled.Load())
		}
	}
	waitFor(t, "spool file closed", testWait, func() bool { return fdsInto(t, spoolDir) == 0 })
	if ents, _ := os.ReadDir(spoolDir); len(ents) != 0 {
		t.Fatalf("spool dir not empty: %v", ents)
	}
}

// With buffering off the body streams: the server reads the start while
// the client still holds back the rest.
func TestBody_Streamed10MiB(t *testing.T) {
	spoolDir := t.TempDir()
	data := pattern(10 << 20)
	started := make(chan struct{})
	s := newTestServer(t, "s", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.CopyN(h, r.Body, 1); err == nil {
			close(started)
		}
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %d %x", r.ContentLength, n+1, h.Sum(nil))
	})
	g := newTestGroup(t, Config{Servers: urls(s)}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{Buffering: false, SpoolDir: spoolDir}))
	pr, pw := io.Pipe()
	go func() {
		pw.Write(data[:1<<20])
		select {
		case <-started:
			pw.Write(data[1<<20:])
			pw.Close()
		case <-time.After(testWait):
			pw.CloseWithError(fmt.Errorf("upstream did not start reading before the body was complete"))
		}
	}()
	st, body := do2(t, front.Client(), "POST", front.URL, pr)
	want := fmt.Sprintf("-1 %d %s", len(data), sum(data))
	if st != 200 || body != want {
		t.Fatalf("%d %q, want %q", st, body, want)
	}
	if ents, _ := os.ReadDir(spoolDir); len(ents) != 0 {
		t.Fatal("streaming mode spooled")
	}
}

func do2(t *testing.T, c *http.Client, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A body over the edge's limit is the client's error (413), not sent on.
func TestBody_TooLargeIs413(t *testing.T) {
	s := newTestServer(t, "s", nil)
	g := newTestGroup(t, Config{Servers: urls(s)}, nil)
	h := g.Handler(HandlerOptions{Buffering: true})
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 100)))
	rec := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(rec, r.Body, 10)
	if st := h.Serve(rec, r); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", st)
	}
	if s.hits.Load() != 0 {
		t.Fatal("oversized body was sent upstream")
	}
}

// unix: servers speak HTTP/1.1 over the socket.
func TestUnixSocketServer(t *testing.T) {
	u := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "unix %s %s", r.Method, r.URL.RequestURI())
	}))
	g := newTestGroup(t, Config{Servers: []Server{{URL: u}}, Keepalive: 4}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	for range 3 {
		if st, _, body := get(t, front.Client(), front.URL+"/a/b?q=1;x=2", nil); st != 200 || body != "unix GET /a/b?q=1;x=2" {
			t.Fatalf("%d %q", st, body)
		}
	}
}

// https servers: verified against tls_ca, or not at all with tls_verify
// off; an unknown CA is a 502.
func TestHTTPSServer_Verification(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls")
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
	s.StartTLS()
	t.Cleanup(s.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		verify bool
		ca     string
		want   int
	}{
		{"verified with tls_ca", true, ca, 200},
		{"unknown CA", true, "", 502},
		{"verify off", false, "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGroup(t, Config{Servers: []Server{{URL: s.URL}}, TLSVerify: tc.verify, TLSCA: tc.ca}, nil)
			front, _ := newFront(t, g.Handler(HandlerOptions{}))
			if st, _, _ := get(t, front.Client(), front.URL, nil); st != tc.want {
				t.Fatalf("status %d, want %d", st, tc.want)
			}
		})
	}
}

// Status is a JSON-friendly snapshot with each server's state.
func TestStatus_JSON(t *testing.T) {
	s := newTestServer(t, "s", nil)
	dead := refusedURL(t)
	g := newTestGroup(t, Config{Name: "api", Servers: []Server{{URL: s.URL, Weight: 3}, {URL: dead, Backup: true}}, MaxFails: 1}, nil)
	g.recordFailure(g.backends[1], "dial tcp: connection refused")
	raw, err := json.Marshal(g.Status())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name    string
		Balance string
		Servers []map[string]any
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "api" || got.Balance != "round_robin" || len(got.Servers) != 2 {
		t.Fatalf("%s", raw)
	}
	a, b := got.Servers[0], got.Servers[1]
	if a["url"] != s.URL || a["up"] != true || a["weight"] != 3.0 || a["backup"] != false || a["active"] != 0.0 || a["fails"] != 0.0 {
		t.Fatalf("first server %v", a)
	}
	if b["up"] != false || b["backup"] != true || b["fails"] != 1.0 || b["last_error"] != "dial tcp: connection refused" || b["down_until"] == nil {
		t.Fatalf("second server %v", b)
	}
}

// Config errors name the problem.
func TestNewGroup_Validation(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no servers"},
		{Config{Servers: []Server{{URL: "127.0.0.1:80"}}}, "missing scheme"},
		{Config{Servers: []Server{{URL: "localhost:8080"}}}, "missing scheme"},
		{Config{Servers: []Server{{URL: "ftp://h:1"}}}, "unsupported scheme"},
		{Config{Servers: []Server{{URL: "http://h:1/app"}}}, "path is not allowed"},
		{Config{Servers: []Server{{URL: "unix:run/app.sock"}}}, "absolute socket path"},
		{Config{Servers: []Server{{URL: "http://h:1"}, {URL: "http://h:1"}}}, "listed twice"},
		{Config{Servers: []Server{{URL: "http://h:1"}}, Balance: "fastest"}, "unknown balance"},
		{Config{Servers: []Server{{URL: "http://h:1"}}, Balance: BalanceCookie}, "needs a name"},
		{Config{Servers: []Server{{URL: "http://h:1"}}, Health: &HealthConfig{URI: "health"}}, "must start with /"},
		{Config{Servers: []Server{{URL: "https://h:1"}}, TLSCA: "/nonexistent/ca.pem"}, "tls_ca"},
		{Config{Servers: []Server{{URL: "http://h:1"}}, RetryStatus: []int{42}}, "out of range"},
	} {
		g, err := NewGroup(tc.cfg, nil)
		if err == nil {
			g.Close()
			t.Errorf("%+v: no error, want %q", tc.cfg.Servers, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg.Servers, err, tc.want)
		}
	}
	for _, ok := range []string{"http://h", "https://h:8443", "unix:/run/app.sock", "unix:///run/app.sock", "http://[::1]:80/"} {
		g, err := NewGroup(Config{Servers: []Server{{URL: ok}}}, nil)
		if err != nil {
			t.Errorf("%s: %v", ok, err)
			continue
		}
		g.Close()
	}
}

// A body the server cuts short after its head: the client gets the head
// and the bytes that came, then the cut (not passed off as complete, and
// not an empty reply), and one error line
// names the server and the request; ReverseProxy's own context-free
// line for it is dropped.
func TestProxy_BodyCutShortIsLogged(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
	})
	log, logs := observed()
	g := newTestGroup(t, Config{Servers: []Server{{URL: url}}}, log)
	front, _ := newFront(t, g.Handler(HandlerOptions{}))
	resp, err := front.Client().Get(front.URL + "/cut?x=1")
	if err != nil {
		t.Fatalf("no response at all (an empty reply): %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("the client got a complete response from a body cut short")
	}
	// As from nginx: the status and what the server sent, then the cut.
	if resp.StatusCode != http.StatusOK || string(body) != "only this" {
		t.Errorf("client got %d %q before the cut, want 200 %q", resp.StatusCode, body, "only this")
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessage("upstream response cut short; client connection aborted").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the cut body; logs: %v", logs.All())
		}
		time.Sleep(5 * time.Millisecond)
	}
	f := logs.FilterMessage("upstream response cut short; client connection aborted").All()[0].ContextMap()
	if f["server"] != url || f["uri"] != "/cut?x=1" || !strings.Contains(f["cause"].(string), "EOF") {
		t.Errorf("log fields %v", f)
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "ReverseProxy read error") {
			t.Errorf("ReverseProxy's own line was not dropped: %q", e.Message)
		}
	}
}

// countingHinter records the packet hints a response gave its connection.
type countingHinter struct{ n int }

func (c *countingHinter) MoreFollows() { c.n++ }

// A response whose Content-Length is past net/http's buffer hints the
// connection once (packethint); small, HEAD and length-less ones do not.
func TestProxy_LargeResponseHintsPackets(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Length", "10000")
			w.Write(bytes.Repeat([]byte("x"), 10000))
		case "/stream":
			w.Write(bytes.Repeat([]byte("x"), 10000))
			w.(http.Flusher).Flush()
		default:
			w.Write([]byte("small"))
		}
	}))
	defer up.Close()
	g := newTestGroup(t, Config{Servers: []Server{{URL: up.URL}}}, nil)
	h := g.Handler(HandlerOptions{})
	for _, tc := range []struct {
		method, path string
		hints        int
	}{
		{"GET", "/page", 1},
		{"GET", "/small", 0},
		{"HEAD", "/page", 0},
		{"GET", "/stream", 0},
	} {
		var ch countingHinter
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req = req.WithContext(packethint.WithHinter(req.Context(), &ch))
		rec := httptest.NewRecorder()
		if st := h.Serve(rec, req); st != 0 || rec.Code != 200 {
			t.Fatalf("%s %s: Serve %d, status %d", tc.method, tc.path, st, rec.Code)
		}
		if ch.n != tc.hints {
			t.Errorf("%s %s: %d hints, want %d", tc.method, tc.path, ch.n, tc.hints)
		}
	}
}
