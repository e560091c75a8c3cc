package uwsgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// interopApp is the WSGI app the real uWSGI serves (stdlib only).
const interopApp = `import hashlib
import json
import os
import time


def reply(start_response, status, obj):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def stream(marker):
    yield b"first\n"
    # Wait until the client has read the first chunk, proving the
    # transport streams rather than buffering the whole body.
    deadline = time.monotonic() + 5
    while not os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield b"second\n" if os.path.exists(marker) else b"not-streamed\n"


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        digest, n = hashlib.sha256(), 0
        while True:
            chunk = environ["wsgi.input"].read(65536)
            if not chunk:
                break
            digest.update(chunk)
            n += len(chunk)
        return reply(start_response, "200 OK", {"sha256": digest.hexdigest(), "length": n})
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream(environ["HTTP_X_MARKER"])
    if path == "/chunked":
        # An app framing its own chunked body; uWSGI passes it through.
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Transfer-Encoding", "chunked")])
        return [b"6\r\nhello,\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"]
    if path == "/cookies":
        start_response("200 OK", [("Set-Cookie", "a=1; Path=/"),
                                  ("Set-Cookie", "b=2; HttpOnly"),
                                  ("Content-Length", "0")])
        return [b""]
    if path == "/304":
        start_response("304 Not Modified", [("ETag", '"v1"')])
        return []
    if path == "/environ":
        env = {k: v for k, v in environ.items() if isinstance(v, str)}
        return reply(start_response, "200 OK", {"env": env, "keys": sorted(environ)})
    return reply(start_response, "404 Not Found", {"path": path})
`

const (
	uwsgiBin     = "/usr/bin/uwsgi"
	pythonPlugin = "/usr/lib/uwsgi/plugins/python3_plugin.so"
)

// lockedBuffer collects uWSGI's log from its stdout and stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type uwsgiProcess struct {
	unix, tcp string // socket path, HOST:PORT
}

var errAddrInUse = errors.New("uwsgi could not bind its TCP port")

// startUWSGI runs Debian's uWSGI with the python3 plugin on a unix socket
// and a loopback TCP port, and stops it with SIGINT when the test ends
// (SIGTERM would make it reload). bufferSize is --buffer-size; "" keeps
// uWSGI's default of 4096.
func startUWSGI(t *testing.T, bufferSize string) *uwsgiProcess {
	t.Helper()
	for _, f := range []string{uwsgiBin, pythonPlugin} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing in CI (install uwsgi and uwsgi-plugin-python3): %v", f, err)
			}
			t.Skipf("%s missing (apt install uwsgi uwsgi-plugin-python3): %v", f, err)
		}
	}
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	if err := os.WriteFile(app, []byte(interopApp), 0o644); err != nil {
		t.Fatal(err)
	}
	// uWSGI cannot report a port it picked itself, so take a free one and
	// retry if another process grabs it first.
	for range 3 {
		p, err := launchUWSGI(t, dir, app, freePort(t), bufferSize)
		if errors.Is(err, errAddrInUse) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Fatal("uwsgi: no free TCP port after 3 attempts")
	return nil
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func launchUWSGI(t *testing.T, dir, app, tcpAddr, bufferSize string) (*uwsgiProcess, error) {
	p := &uwsgiProcess{unix: filepath.Join(dir, "uwsgi.sock"), tcp: tcpAddr}
	os.Remove(p.unix) // left by a failed attempt
	log := &lockedBuffer{}
	args := []string{
		"--strict", // unknown options are errors, so a flag typo fails loudly
		"--plugin", "python3",
		"--socket", p.unix,
		"--socket", p.tcp,
		"--wsgi-file", app,
		"--master", "--processes", "1",
		"--need-app",        // exit instead of serving 500s if app.py fails to import
		"--disable-logging", // request lines; startup and errors still log
	}
	if bufferSize != "" {
		args = append(args, "--buffer-size", bufferSize)
	}
	cmd := exec.Command(uwsgiBin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies, the master still gets its stop signal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start uwsgi: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Error("uwsgi ignored SIGINT for 10s; killed")
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	for !ready(p) {
		select {
		case err := <-exited:
			if strings.Contains(log.String(), "Address already in use") {
				return nil, errAddrInUse
			}
			return nil, fmt.Errorf("uwsgi exited before listening (%v):\n%s", err, log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("uwsgi not listening after 10s:\n%s", log.String())
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("uwsgi log:\n%s", log.String())
		}
	})
	return p, nil
}

// ready reports whether both sockets accept connections.
func ready(p *uwsgiProcess) bool {
	for _, a := range [][2]string{{"unix", p.unix}, {"tcp", p.tcp}} {
		c, err := net.DialTimeout(a[0], a[1], time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

func (p *uwsgiProcess) transports() map[string]*Transport {
	return map[string]*Transport{
		"unix": {Network: "unix", Addr: p.unix, DialTimeout: 2 * time.Second, FirstByteTimeout: 10 * time.Second},
		"tcp":  {Network: "tcp", Addr: p.tcp, DialTimeout: 2 * time.Second, FirstByteTimeout: 10 * time.Second},
	}
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}

// The Transport interoperates with Debian's uWSGI and python3 plugin.
func TestInterop_UWSGI(t *testing.T) {
	p := startUWSGI(t, "65535") // the default 4096 drops requests with large headers
	for network, tr := range p.transports() {
		t.Run(network+"/GET environ", func(t *testing.T) { testInteropEnviron(t, tr) })
		t.Run(network+"/POST 10 MiB", func(t *testing.T) { testInteropPost(t, tr) })
	}
	tr := p.transports()["unix"]
	t.Run("streamed response", func(t *testing.T) { testInteropStream(t, tr) })
	t.Run("app-chunked response", func(t *testing.T) {
		resp, err := tr.RoundTrip(newRequest(t, "GET", "/chunked", nil))
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		if got := readBody(t, resp); got != "hello, world" {
			t.Fatalf("body = %q, want the de-chunked text", got)
		}
	})
	t.Run("repeated Set-Cookie", func(t *testing.T) {
		resp, err := tr.RoundTrip(newRequest(t, "GET", "/cookies", nil))
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		readBody(t, resp)
		if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1; Path=/" || got[1] != "b=2; HttpOnly" {
			t.Fatalf("Set-Cookie = %q, want two headers in order", got)
		}
	})
	t.Run("304 without body", func(t *testing.T) {
		r := newRequest(t, "GET", "/304", nil)
		r.Header.Set("If-None-Match", `"v1"`)
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		if body := readBody(t, resp); resp.StatusCode != 304 || body != "" || resp.Header.Get("ETag") != `"v1"` {
			t.Fatalf("status %d, ETag %q, body %q", resp.StatusCode, resp.Header.Get("ETag"), body)
		}
	})
	t.Run("HTTPS under TLS", func(t *testing.T) {
		r := newRequest(t, "GET", "/environ", nil)
		r.TLS = &tls.ConnectionState{}
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		var got struct{ Env map[string]string }
		decodeJSON(t, resp, &got)
		if got.Env["wsgi.url_scheme"] != "https" || got.Env["HTTPS"] != "on" {
			t.Fatalf("wsgi.url_scheme = %q, HTTPS = %q; want https, on", got.Env["wsgi.url_scheme"], got.Env["HTTPS"])
		}
	})
	// Pins a uWSGI behaviour callers must guard against: it takes the
	// scheme from X-Forwarded-Proto (even over HTTPS=on) and from
	// X-Forwarded-Ssl, so package upstream has to strip or overwrite these
	// headers for untrusted clients before RoundTrip.
	t.Run("uWSGI takes the scheme from X-Forwarded-Proto and -Ssl", func(t *testing.T) {
		for _, c := range []struct {
			header, value string
			tls           bool
			want          string
		}{
			{"X-Forwarded-Proto", "https", false, "https"},
			{"X-Forwarded-Proto", "http", true, "http"},
			{"X-Forwarded-Ssl", "on", false, "https"},
		} {
			r := newRequest(t, "GET", "/environ", nil)
			r.Header.Set(c.header, c.value)
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			resp, err := tr.RoundTrip(r)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			var got struct{ Env map[string]string }
			decodeJSON(t, resp, &got)
			if got.Env["wsgi.url_scheme"] != c.want {
				t.Errorf("%s: %s, TLS %v: wsgi.url_scheme = %q, want %q", c.header, c.value, c.tls, got.Env["wsgi.url_scheme"], c.want)
			}
		}
	})
}

// With uWSGI's default 4 KiB --buffer-size, a request with a large cookie
// is dropped by uWSGI; the error says which flag fixes it.
func TestInterop_UWSGIDefaultBufferSize(t *testing.T) {
	tr := startUWSGI(t, "").transports()["unix"]
	resp, err := tr.RoundTrip(newRequest(t, "GET", "/environ", nil))
	if err != nil {
		t.Fatalf("small request: %v", err)
	}
	readBody(t, resp)
	r := newRequest(t, "GET", "/environ", nil)
	r.Header.Set("Cookie", "big="+strings.Repeat("c", 5000))
	_, err = tr.RoundTrip(r)
	if err == nil || !strings.Contains(err.Error(), "--buffer-size") || isDialError(err) {
		t.Fatalf("err = %v, want a post-dial failure hinting at --buffer-size", err)
	}
	t.Logf("as expected: %v", err)
}

// The app sees the request as CGI vars, client headers only as HTTP_*.
func testInteropEnviron(t *testing.T, tr *Transport) {
	r := newRequest(t, "GET", "/environ?a=1&b=%20", nil)
	r.RemoteAddr = "198.51.100.4:40000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	r.Header.Set("X-Forwarded-Host", "public.example")
	r.Header["X_Forwarded_For"] = []string{"10.6.6.6"}
	r.Header["UWSGI_FILE"] = []string{"/etc/passwd"}
	r.Header["Uwsgi-File"] = []string{"/etc/passwd"}
	r.Header["UWSGI-SCRIPT"] = []string{"os:system"}
	r.Header["Cookie"] = []string{"a=1", "big=" + strings.Repeat("c", 20000)}
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	var got struct {
		Env  map[string]string
		Keys []string
	}
	decodeJSON(t, resp, &got)
	want := map[string]string{
		"REQUEST_METHOD": "GET", "PATH_INFO": "/environ", "QUERY_STRING": "a=1&b=%20",
		"REQUEST_URI": "/environ?a=1&b=%20", "SERVER_NAME": "app.example", "SERVER_PORT": "80",
		"REMOTE_ADDR": "198.51.100.4", "REMOTE_PORT": "40000", "HTTP_HOST": "app.example",
		"HTTP_X_FORWARDED_FOR": "203.0.113.9", "HTTP_X_FORWARDED_HOST": "public.example",
		"HTTP_UWSGI_FILE": "/etc/passwd", "HTTP_UWSGI_SCRIPT": "os:system",
		"wsgi.url_scheme": "http",
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("environ[%s] = %q, want %q", k, got.Env[k], v)
		}
	}
	if c := got.Env["HTTP_COOKIE"]; c != "a=1; big="+strings.Repeat("c", 20000) {
		t.Errorf("HTTP_COOKIE is %d bytes, want both cookies joined by \"; \"", len(c))
	}
	for _, k := range got.Keys {
		if strings.HasPrefix(strings.ToUpper(k), "UWSGI_") {
			t.Errorf("environ has magic key %q", k)
		}
	}
	for k, v := range got.Env {
		if strings.Contains(v, "10.6.6.6") {
			t.Errorf("environ[%s] = %q carries the underscore header", k, v)
		}
	}
}

// A 10 MiB body streams through intact.
func testInteropPost(t *testing.T, tr *Transport) {
	payload := make([]byte, 10<<20)
	for i := range payload {
		payload[i] = byte(i*7 + i>>10)
	}
	sum := sha256.Sum256(payload)
	resp, err := tr.RoundTrip(newRequest(t, "POST", "/echo", bytes.NewReader(payload)))
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	var got struct {
		SHA256 string
		Length int
	}
	decodeJSON(t, resp, &got)
	if got.Length != len(payload) || got.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("app saw %d bytes with sha256 %s, want %d and %x", got.Length, got.SHA256, len(payload), sum)
	}
}

// A generator's chunks reach the client as the app yields them: the app
// waits for a marker the test writes only after reading the first chunk.
func testInteropStream(t *testing.T, tr *Transport) {
	marker := filepath.Join(t.TempDir(), "first-chunk-read")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r := newRequest(t, "GET", "/stream", nil).WithContext(ctx)
	r.Header.Set("X-Marker", marker)
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 {
		t.Errorf("ContentLength = %d, want -1 (a stream delimited by the connection's end)", resp.ContentLength)
	}
	first := make([]byte, len("first\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first\n" {
		t.Fatalf("first chunk %q, %v", first, err)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v; want the chunk yielded after the marker", rest, err)
	}
}
