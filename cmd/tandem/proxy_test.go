package main

// Proxy integration tests: the real tandem binary in front of the real
// upstreams an operator moves from — gunicorn (HTTP over a unix socket and
// TCP), uWSGI (the uwsgi protocol over both) and uvicorn (HTTP and
// WebSockets over a unix socket), all from Debian and run by
// /usr/bin/python3. Missing peers skip the tests, except in CI.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// debPython is Debian's interpreter: the packaged gunicorn, uvicorn and
// websockets live in its path, not in a python3 found earlier on PATH.
const debPython = "/usr/bin/python3"

// proxyWSGIApp is the stdlib WSGI app gunicorn and uWSGI run. Every
// response names the peer (X-Peer), so tests see which server answered.
const proxyWSGIApp = `
import hashlib, json, os, re, time

NAME = os.environ.get("PEER_NAME", "peer")
DIR = os.environ.get("PEER_DIR", ".")
HEADERS = ["host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
           "forwarded", "x-real-ip", "x-test", "connection", "te"]


def respond(start_response, status, body, headers=(), ctype="text/plain"):
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                            ("X-Peer", NAME)] + list(headers))
    return [body]


def stream(gate):
    # The second chunk waits for the test to create the gate file, so a
    # proxy that buffers the whole response cannot deliver the first one.
    yield b"first\n"
    path = os.path.join(DIR, "gate-" + gate)
    deadline = time.time() + 10
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.01)
    yield b"second\n" if os.path.exists(path) else b"gate timeout\n"
    yield b"third\n"


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path in ("/who", "/health"):
        return respond(start_response, "200 OK", NAME.encode())
    if path == "/env":
        info = {"method": environ["REQUEST_METHOD"], "path": path,
                "query": environ.get("QUERY_STRING", "")}
        for h in HEADERS:
            info[h] = environ.get("HTTP_" + h.upper().replace("-", "_"))
        return respond(start_response, "200 OK", json.dumps(info).encode(), ctype="application/json")
    if path == "/echo":
        h, n = hashlib.sha256(), 0
        inp = environ["wsgi.input"]
        left = int(environ.get("CONTENT_LENGTH") or 0)
        while left > 0:
            chunk = inp.read(min(left, 65536))
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
            left -= len(chunk)
        return respond(start_response, "200 OK", ("%s %d" % (h.hexdigest(), n)).encode())
    if path == "/stream":
        gate = re.sub(r"[^a-z0-9]", "", environ.get("QUERY_STRING", ""))
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Peer", NAME)])
        return stream(gate)
    if path == "/cookies":
        return respond(start_response, "200 OK", b"two cookies\n",
                       [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")])
    if path == "/etag":
        if environ.get("HTTP_IF_NONE_MATCH") == '"v1"':
            start_response("304 Not Modified", [("ETag", '"v1"'), ("X-Peer", NAME)])
            return []
        return respond(start_response, "200 OK", b"tagged body\n", [("ETag", '"v1"')])
    return respond(start_response, "404 Not Found", b"not found\n")
`

// proxyASGIApp is the same app for uvicorn, plus a WebSocket echo on /ws.
const proxyASGIApp = `
import asyncio, hashlib, json, os, re

NAME = os.environ.get("PEER_NAME", "peer").encode()
DIR = os.environ.get("PEER_DIR", ".")
HEADERS = ["host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
           "forwarded", "x-real-ip", "x-test", "connection", "te"]


async def respond(send, status, body, headers=(), ctype=b"text/plain"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                            (b"x-peer", NAME)] + list(headers)})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive):
    h, n = hashlib.sha256(), 0
    while True:
        m = await receive()
        if m["type"] != "http.request":
            break
        h.update(m.get("body", b""))
        n += len(m.get("body", b""))
        if not m.get("more_body"):
            break
    return h, n


async def websocket(receive, send):
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            return
        if m.get("text") is not None:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        return await websocket(receive, send)
    if scope["type"] != "http":
        return
    path = scope["path"]
    headers = {}
    for k, v in scope["headers"]:
        headers.setdefault(k.decode("latin-1"), v.decode("latin-1"))
    if path in ("/who", "/health"):
        return await respond(send, 200, NAME)
    if path == "/env":
        info = {"method": scope["method"], "path": path,
                "query": scope["query_string"].decode("latin-1")}
        for h in HEADERS:
            info[h] = headers.get(h)
        return await respond(send, 200, json.dumps(info).encode(), ctype=b"application/json")
    if path == "/echo":
        h, n = await read_body(receive)
        return await respond(send, 200, ("%s %d" % (h.hexdigest(), n)).encode())
    if path == "/stream":
        gate = re.sub(r"[^a-z0-9]", "", scope["query_string"].decode("latin-1"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"x-peer", NAME)]})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        gate_path = os.path.join(DIR, "gate-" + gate)
        for _ in range(1000):
            if os.path.exists(gate_path):
                break
            await asyncio.sleep(0.01)
        second = b"second\n" if os.path.exists(gate_path) else b"gate timeout\n"
        await send({"type": "http.response.body", "body": second, "more_body": True})
        await send({"type": "http.response.body", "body": b"third\n"})
        return
    if path == "/cookies":
        return await respond(send, 200, b"two cookies\n",
                             [(b"set-cookie", b"a=1; Path=/"), (b"set-cookie", b"b=2; Path=/")])
    if path == "/etag":
        if headers.get("if-none-match") == '"v1"':
            await send({"type": "http.response.start", "status": 304,
                        "headers": [(b"etag", b'"v1"'), (b"x-peer", NAME)]})
            await send({"type": "http.response.body", "body": b""})
            return
        return await respond(send, 200, b"tagged body\n", [(b"etag", b'"v1"')])
    return await respond(send, 404, b"not found\n")
`

// ---------------------------------------------------------------- peers

// needPeers skips the test when a Debian peer is missing — or fails it in
// CI, where .ci/run installs them and a skip would hide lost coverage.
func needPeers(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		var err error
		switch name {
		case "gunicorn":
			err = exec.Command(debPython, "-c", "import gunicorn").Run()
		case "uvicorn":
			err = exec.Command(debPython, "-c", "import uvicorn, websockets").Run()
		case "uwsgi":
			if _, err = os.Stat("/usr/bin/uwsgi"); err == nil {
				_, err = os.Stat("/usr/lib/uwsgi/plugins/python3_plugin.so")
			}
		default:
			t.Fatalf("unknown peer %q", name)
		}
		if err != nil {
			msg := fmt.Sprintf("peer %s unavailable (%v): apt-get install gunicorn uwsgi uwsgi-plugin-python3 uvicorn python3-websockets", name, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// syncBuffer collects a peer's output; exec copies into it from its own
// goroutine while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// peer is an upstream server process (and its workers) in its own process
// group, so one signal reaches the master and every worker.
type peer struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	stopSig syscall.Signal
	out     syncBuffer
	exited  chan struct{}
}

// startPeer runs args in dir with PEER_NAME=name and PEER_DIR=dir, and
// stops the whole process group with stopSig when the test ends (SIGKILL
// if it has not exited 10s later). kind only labels logs.
func startPeer(t *testing.T, kind, name, dir string, stopSig syscall.Signal, args ...string) *peer {
	t.Helper()
	p := &peer{t: t, name: kind + " " + name, stopSig: stopSig, exited: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "PEER_NAME="+name, "PEER_DIR="+dir, "PYTHONDONTWRITEBYTECODE=1")
	p.start(t)
	return p
}

// start runs p.cmd in its own process group, collecting its output, and
// stops it when the test ends (logging the output if the test failed).
func (p *peer) start(t *testing.T) {
	t.Helper()
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.out.String())
		}
	})
}

// stop signals the group and waits; leftover workers get SIGKILL.
func (p *peer) stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, p.stopSig)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.t.Logf("%s did not stop within 10s of %v; killing it", p.name, p.stopSig)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.exited
}

// kill9 kills the master and every worker at once, as the OOM killer or
// a crashed host would, and waits for the master to be reaped.
func (p *peer) kill9() {
	p.t.Helper()
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill -9 %s: %v", p.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.t.Fatalf("%s still running 5s after SIGKILL", p.name)
	}
}

// waitReady polls ready until it returns nil, the peer exits, or d passes.
func (p *peer) waitReady(d time.Duration, ready func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited during start-up: %v", p.name, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %v", p.name, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bindRace reports whether the peer failed because its port was taken
// between freePort closing it and the peer binding it.
func (p *peer) bindRace() bool {
	return strings.Contains(p.out.String(), "in use")
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// onFreePort starts a peer on a free port, retrying with a new port when
// another process took it first.
func onFreePort(t *testing.T, start func(port int) (*peer, error)) (*peer, int) {
	t.Helper()
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		p, err := start(port)
		if err == nil {
			return p, port
		}
		if !p.bindRace() {
			t.Fatal(err)
		}
		last = err
		p.stop()
	}
	t.Fatalf("no free port after 3 tries: %v", last)
	return nil, 0
}

// httpOver is a client that sends every request to one unix socket or TCP
// address, whatever the URL's host.
func httpOver(network, addr string) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		},
	}
}

// whoIs is nil when GET /who through c answers 200 from the named peer.
func whoIs(c *http.Client, url, name string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != name {
		return fmt.Errorf("GET %s = %d %.100q, want 200 %q", url, resp.StatusCode, b, name)
	}
	return nil
}

func writePeerApps(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "wsgiapp.py"), proxyWSGIApp)
	writeFile(t, filepath.Join(dir, "asgiapp.py"), proxyASGIApp)
}

// startGunicorn runs gunicorn's default deployment: sync workers behind a
// proxy, bound to bind ("unix:PATH" or "HOST:PORT"). Ready when GET /who
// answers from this peer.
func startGunicorn(t *testing.T, dir, name, bind string) (*peer, error) {
	t.Helper()
	p := startPeer(t, "gunicorn", name, dir, syscall.SIGTERM, debPython, "-m", "gunicorn",
		"--workers", "2", "--worker-class", "sync", "--graceful-timeout", "3",
		"--bind", bind, "--chdir", dir, "wsgiapp:application")
	var c *http.Client
	if path, ok := strings.CutPrefix(bind, "unix:"); ok {
		c = httpOver("unix", path)
	} else {
		c = httpOver("tcp", bind)
	}
	return p, p.waitReady(20*time.Second, func() error { return whoIs(c, "http://peer/who", name) })
}

func startGunicornTCP(t *testing.T, dir, name string) (*peer, int) {
	t.Helper()
	return onFreePort(t, func(port int) (*peer, error) {
		return startGunicorn(t, dir, name, fmt.Sprintf("127.0.0.1:%d", port))
	})
}

// startUWSGI runs Debian's uWSGI the way it is deployed behind nginx:
// master + workers speaking the uwsgi protocol on socket (a path or
// HOST:PORT). Debian's uWSGI reloads on SIGTERM, so it is stopped with
// SIGINT. Ready when the socket accepts; the app is imported before the
// workers fork, and requests before then wait in the backlog.
func startUWSGI(t *testing.T, dir, name, socket string) (*peer, error) {
	t.Helper()
	p := startPeer(t, "uwsgi", name, dir, syscall.SIGINT, "/usr/bin/uwsgi", "--plugin", "python3",
		"--master", "--processes", "2", "--socket", socket, "--chdir", dir,
		"--wsgi-file", filepath.Join(dir, "wsgiapp.py"), "--need-app", "--disable-logging")
	network := "tcp"
	if strings.HasPrefix(socket, "/") {
		network = "unix"
	}
	return p, p.waitReady(20*time.Second, func() error {
		c, err := net.DialTimeout(network, socket, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// startUvicorn runs uvicorn on a unix socket (`uvicorn --uds`), with the
// websockets implementation Debian ships.
func startUvicorn(t *testing.T, dir, name, sock string) *peer {
	t.Helper()
	p := startPeer(t, "uvicorn", name, dir, syscall.SIGTERM, debPython, "-m", "uvicorn",
		"--uds", sock, "--app-dir", dir, "--ws", "websockets", "--lifespan", "off",
		"--no-access-log", "asgiapp:app")
	c := httpOver("unix", sock)
	if err := p.waitReady(20*time.Second, func() error { return whoIs(c, "http://peer/who", name) }); err != nil {
		t.Fatal(err)
	}
	return p
}

// ---------------------------------------------------------------- tandem

// startProxy runs tandem with one site proxying everything to target,
// and waits until a request through it reaches the peer called name.
func startProxy(t *testing.T, target, name string) *instance {
	t.Helper()
	in := startTandem(t, `
client_max_body_size 20m;
site _ {
    listen 127.0.0.1:0;
    location / { proxy `+target+`; }
}
`, nil)
	c := client()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := whoIs(c, in.url("/who"), name)
		if err == nil {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("through tandem: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkProxied runs the behaviours every transport must keep, through in
// to the peer called name whose app files are in dir.
func checkProxied(t *testing.T, in *instance, dir, name string) {
	t.Run("GET", func(t *testing.T) { checkGet(t, in, name) })
	t.Run("UnderscoreHeadersDropped", func(t *testing.T) { checkUnderscoreHeaders(t, in) })
	t.Run("POST10MiB", func(t *testing.T) { checkPost10MiB(t, in) })
	t.Run("Streamed", func(t *testing.T) { checkStreamed(t, in, dir) })
	t.Run("TwoSetCookies", func(t *testing.T) { checkTwoSetCookies(t, in) })
	t.Run("NotModified", func(t *testing.T) { checkNotModified(t, in) })
}

// The method, path, query string and Host reach the app unchanged, the
// forwarding headers name the real client (a client's own X-Forwarded-For
// is replaced: loopback is not a trusted proxy by default), and the
// answer comes back with the app's own headers.
func checkGet(t *testing.T, in *instance, name string) {
	r := do(t, client(), "GET", in.url("/env?x=1&y=%20z&x=2"), map[string]string{"X-Test": "kept", "X-Forwarded-For": "203.0.113.9"})
	if r.status != 200 || r.header.Get("X-Peer") != name {
		t.Fatalf("GET /env = %d X-Peer %q, want 200 from %s: %.200q", r.status, r.header.Get("X-Peer"), name, r.body)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(r.body), &env); err != nil {
		t.Fatalf("GET /env body %q: %v", r.body, err)
	}
	want := map[string]any{"method": "GET", "path": "/env", "query": "x=1&y=%20z&x=2", "x-test": "kept",
		"host": in.addrs[0], "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": in.addrs[0],
		"forwarded": `for=127.0.0.1;host="` + in.addrs[0] + `";proto=http`}
	for k, want := range want {
		if env[k] != want {
			t.Errorf("app saw %s = %v, want %v (all: %v)", k, env[k], want, env)
		}
	}
}

// A client header spelled with '_' never reaches the app: WSGI servers
// map '_' and '-' to the same CGI name (gunicorn merges X_Forwarded_For
// into HTTP_X_FORWARDED_FOR), so passing it would let a client forge the
// forwarding headers tandem sets. nginx drops such headers by default
// (underscores_in_headers off).
func checkUnderscoreHeaders(t *testing.T, in *instance) {
	req, err := http.NewRequest("GET", in.url("/env"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Set directly: these must go out exactly as spelled.
	req.Header["X_Forwarded_For"] = []string{"203.0.113.9"}
	req.Header["X_Forwarded_Proto"] = []string{"https"}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("GET /env = %d %q: %v", resp.StatusCode, b, err)
	}
	if env["x-forwarded-for"] != "127.0.0.1" || env["x-forwarded-proto"] != "http" {
		t.Errorf("client headers X_Forwarded_For/X_Forwarded_Proto reached the app: it sees X-Forwarded-For %q, X-Forwarded-Proto %q; want 127.0.0.1 and http",
			env["x-forwarded-for"], env["x-forwarded-proto"])
	}
}

// A 10 MiB body arrives whole and unaltered (the app hashes it).
func checkPost10MiB(t *testing.T, in *instance) {
	body := make([]byte, 10<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	want := fmt.Sprintf("%s %d", hex.EncodeToString(sum[:]), len(body))
	c := client()
	c.Timeout = 30 * time.Second
	resp, err := c.Post(in.url("/echo"), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /echo 10 MiB: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("POST /echo 10 MiB = %d %.200q, want 200 %q", resp.StatusCode, b, want)
	}
}

// A response of unknown length is streamed: its first chunk reaches the
// client while the app is still blocked before the second (chunked to
// the client, as HTTP/1.1 keep-alive requires).
func checkStreamed(t *testing.T, in *instance, dir string) {
	gate := fmt.Sprintf("g%d", time.Now().UnixNano())
	type first struct {
		resp *http.Response
		line string
		err  error
	}
	got := make(chan first, 1)
	go func() {
		resp, err := client().Get(in.url("/stream?" + gate))
		if err != nil {
			got <- first{err: err}
			return
		}
		line, err := bufio.NewReader(io.LimitReader(resp.Body, 6)).ReadString('\n')
		got <- first{resp: resp, line: line, err: err}
	}()
	var f first
	select {
	case f = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the first chunk did not reach the client within 5s while the app waited: the response is buffered, not streamed")
	}
	if f.err != nil {
		t.Fatalf("GET /stream: %v", f.err)
	}
	defer f.resp.Body.Close()
	if f.resp.StatusCode != 200 || f.line != "first\n" {
		t.Fatalf("GET /stream = %d, first line %q", f.resp.StatusCode, f.line)
	}
	writeFile(t, filepath.Join(dir, "gate-"+gate), "")
	rest, err := io.ReadAll(f.resp.Body)
	if err != nil || string(rest) != "second\nthird\n" {
		t.Fatalf("rest of the stream %q, %v", rest, err)
	}
	if f.resp.ContentLength != -1 || len(f.resp.TransferEncoding) != 1 || f.resp.TransferEncoding[0] != "chunked" {
		t.Errorf("streamed response: Content-Length %d, Transfer-Encoding %q, want chunked", f.resp.ContentLength, f.resp.TransferEncoding)
	}
}

// Repeated header names (two Set-Cookie) are passed on as two headers, in
// order — never folded into one line.
func checkTwoSetCookies(t *testing.T, in *instance) {
	r := do(t, client(), "GET", in.url("/cookies"), nil)
	got := r.header.Values("Set-Cookie")
	if r.status != 200 || len(got) != 2 || got[0] != "a=1; Path=/" || got[1] != "b=2; Path=/" {
		t.Fatalf("GET /cookies = %d Set-Cookie %q, want [a=1; Path=/  b=2; Path=/]", r.status, got)
	}
}

// The app's own 304 for a matching If-None-Match passes through with its
// validator and no body.
func checkNotModified(t *testing.T, in *instance) {
	c := client()
	r := do(t, c, "GET", in.url("/etag"), nil)
	if r.status != 200 || r.header.Get("ETag") != `"v1"` || r.body != "tagged body\n" {
		t.Fatalf("GET /etag = %d ETag %q body %q", r.status, r.header.Get("ETag"), r.body)
	}
	r = do(t, c, "GET", in.url("/etag"), map[string]string{"If-None-Match": `"v1"`})
	if r.status != 304 || r.header.Get("ETag") != `"v1"` || r.body != "" {
		t.Fatalf("GET /etag If-None-Match = %d ETag %q body %q, want 304 with the ETag and no body", r.status, r.header.Get("ETag"), r.body)
	}
}

// ---------------------------------------------------------------- transports

// gunicorn (sync workers) on a unix socket and on TCP, through `proxy
// unix:/PATH` and `proxy http://HOST:PORT`.
func TestProxy_Gunicorn(t *testing.T) {
	needPeers(t, "gunicorn")
	t.Run("Unix", func(t *testing.T) {
		dir := t.TempDir()
		writePeerApps(t, dir)
		sock := filepath.Join(dir, "gunicorn.sock")
		if _, err := startGunicorn(t, dir, "gu", "unix:"+sock); err != nil {
			t.Fatal(err)
		}
		checkProxied(t, startProxy(t, "unix:"+sock, "gu"), dir, "gu")
	})
	t.Run("TCP", func(t *testing.T) {
		dir := t.TempDir()
		writePeerApps(t, dir)
		_, port := startGunicornTCP(t, dir, "gt")
		checkProxied(t, startProxy(t, fmt.Sprintf("http://127.0.0.1:%d", port), "gt"), dir, "gt")
	})
}

// uWSGI over the uwsgi protocol, on a unix socket (`uwsgi+unix:/PATH`)
// and on TCP (`uwsgi://HOST:PORT`).
func TestProxy_UWSGI(t *testing.T) {
	needPeers(t, "uwsgi")
	t.Run("Unix", func(t *testing.T) {
		dir := t.TempDir()
		writePeerApps(t, dir)
		sock := filepath.Join(dir, "uwsgi.sock")
		if _, err := startUWSGI(t, dir, "wu", sock); err != nil {
			t.Fatal(err)
		}
		checkProxied(t, startProxy(t, "uwsgi+unix:"+sock, "wu"), dir, "wu")
	})
	t.Run("TCP", func(t *testing.T) {
		dir := t.TempDir()
		writePeerApps(t, dir)
		_, port := onFreePort(t, func(port int) (*peer, error) {
			return startUWSGI(t, dir, "wt", fmt.Sprintf("127.0.0.1:%d", port))
		})
		checkProxied(t, startProxy(t, fmt.Sprintf("uwsgi://127.0.0.1:%d", port), "wt"), dir, "wt")
	})
}

// uvicorn on a unix socket (`uvicorn --uds`), through `proxy unix:/PATH`.
func TestProxy_Uvicorn(t *testing.T) {
	needPeers(t, "uvicorn")
	dir := t.TempDir()
	writePeerApps(t, dir)
	sock := filepath.Join(dir, "uvicorn.sock")
	startUvicorn(t, dir, "uv", sock)
	checkProxied(t, startProxy(t, "unix:"+sock, "uv"), dir, "uv")
}

// ---------------------------------------------------------------- websockets

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// A WebSocket through tandem to uvicorn: the handshake (RFC 6455 §4) is
// answered by the app with the right Sec-WebSocket-Accept, and masked
// text, binary (64-bit length) and close frames are echoed both ways.
func TestProxy_WebSocketEcho_Uvicorn(t *testing.T) {
	needPeers(t, "uvicorn")
	dir := t.TempDir()
	writePeerApps(t, dir)
	sock := filepath.Join(dir, "uvicorn.sock")
	startUvicorn(t, dir, "ws", sock)
	in := startProxy(t, "unix:"+sock, "ws")
	checkWebSocketEcho(t, in.addrs[0])
}

// checkWebSocketEcho opens a WebSocket to ws://addr/ws by hand and checks
// the echo of text, binary and close frames.
func checkWebSocketEcho(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	key := base64.StdEncoding.EncodeToString(raw)
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", addr, key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read handshake response: %v", err)
	}
	h := sha1.Sum([]byte(key + wsGUID))
	wantAccept := base64.StdEncoding.EncodeToString(h[:])
	if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		resp.Header.Get("Sec-WebSocket-Accept") != wantAccept {
		t.Fatalf("handshake: %d Upgrade %q Accept %q (want %q)", resp.StatusCode, resp.Header.Get("Upgrade"),
			resp.Header.Get("Sec-WebSocket-Accept"), wantAccept)
	}

	big := make([]byte, 100<<10)
	_, _ = rand.Read(big)
	for _, m := range []struct {
		op      byte
		payload []byte
	}{{wsText, []byte("hello through tandem")}, {wsBinary, big}, {wsText, []byte("last")}} {
		if err := wsWrite(conn, m.op, m.payload); err != nil {
			t.Fatalf("write frame: %v", err)
		}
		op, payload, err := wsRead(br)
		if err != nil {
			t.Fatalf("read echo of a %d-byte frame: %v", len(m.payload), err)
		}
		if op != m.op || !bytes.Equal(payload, m.payload) {
			t.Fatalf("echo: opcode %d, %d bytes (%.40q); sent opcode %d, %d bytes", op, len(payload), payload, m.op, len(m.payload))
		}
	}
	closing := []byte{0x03, 0xe8} // 1000, normal closure
	if err := wsWrite(conn, wsClose, closing); err != nil {
		t.Fatal(err)
	}
	op, payload, err := wsRead(br)
	if err != nil || op != wsClose || !bytes.HasPrefix(payload, closing) {
		t.Fatalf("close handshake: opcode %d payload %q err %v, want a close frame with 1000", op, payload, err)
	}
}

const (
	wsText   = 0x1
	wsBinary = 0x2
	wsClose  = 0x8
	wsPing   = 0x9
)

// wsWrite sends one final client frame, masked as RFC 6455 §5.3 requires.
func wsWrite(w io.Writer, op byte, payload []byte) error {
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := make([]byte, 4)
	if _, err := rand.Read(mask); err != nil {
		return err
	}
	hdr = append(hdr, mask...)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	_, err := w.Write(append(hdr, masked...))
	return err
}

// wsRead reads one server frame, skipping pings; server frames must be
// final here (the peer echoes whole messages) and must not be masked.
func wsRead(r *bufio.Reader) (byte, []byte, error) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return 0, nil, err
		}
		if h[0]&0x80 == 0 {
			return 0, nil, errors.New("fragmented server frame")
		}
		if h[1]&0x80 != 0 {
			return 0, nil, errors.New("masked server frame (RFC 6455 §5.1 forbids it)")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 16<<20 {
			return 0, nil, fmt.Errorf("server frame of %d bytes", n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return 0, nil, err
		}
		if op := h[0] & 0x0f; op != wsPing {
			return op, payload, nil
		}
	}
}

// ---------------------------------------------------------------- failover

// serverState is one server of an upstream as upstream_status shows it.
type serverState struct {
	URL    string `json:"url"`
	Up     bool   `json:"up"`     // would be given requests now
	Health string `json:"health"` // the active checks' verdict: "up" or "down"
}

// upstreamServer reads the upstream_status page and returns the server of
// the named upstream whose URL ends in suffix.
func upstreamServer(t *testing.T, c *http.Client, statusURL, upstream, suffix string) serverState {
	t.Helper()
	r := do(t, c, "GET", statusURL, nil)
	if r.status != 200 {
		t.Fatalf("GET %s = %d %.200q", statusURL, r.status, r.body)
	}
	var doc struct {
		Upstreams []struct {
			Name    string        `json:"name"`
			Servers []serverState `json:"servers"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatalf("upstream_status: %v in %s", err, r.body)
	}
	for _, u := range doc.Upstreams {
		for _, s := range u.Servers {
			if u.Name == upstream && strings.HasSuffix(s.URL, suffix) {
				return s
			}
		}
	}
	t.Fatalf("upstream_status has no server *%s in upstream %q: %s", suffix, upstream, r.body)
	return serverState{}
}

// Two gunicorns behind one upstream with active health checks; under a
// bounded load one is killed with kill -9 (master and workers): no GET
// fails beyond those in flight (tandem retries connect failures on the
// other server), the dead one is marked down within the health interval,
// and after it restarts on the same address traffic returns to it.
func TestProxy_Failover_Gunicorn(t *testing.T) {
	needPeers(t, "gunicorn")
	dir := t.TempDir()
	writePeerApps(t, dir)
	a, portA := startGunicornTCP(t, dir, "a")
	_, portB := startGunicornTCP(t, dir, "b")
	const interval, failTimeout = 200 * time.Millisecond, 2 * time.Second
	in := startTandem(t, fmt.Sprintf(`
upstream app {
    server http://127.0.0.1:%d;
    server http://127.0.0.1:%d;
    health_uri /health;
    health_interval 200ms;
    health_timeout 1s;
    fail_timeout 2s;
}
site _ {
    listen 127.0.0.1:0;
    location = /_upstreams { upstream_status; }
    location / { proxy app; }
}
`, portA, portB), nil)
	statusURL := in.url("/_upstreams")
	suffixA := fmt.Sprintf(":%d", portA)

	var fromA atomic.Int64 // answers from a so far
	const clients = 4
	ld := startLoad(in.url("/who"), clients, 20000, func(status int, body string) bool {
		if status != 200 || (body != "a" && body != "b") {
			return false
		}
		if body == "a" {
			fromA.Add(1)
		}
		return true
	})
	stopLoad := sync.OnceFunc(ld.stop)
	defer stopLoad()
	ld.waitOK(t, 200, 20*time.Second)
	if fromA.Load() == 0 {
		t.Fatalf("round robin over two servers sent nothing to a: %s", ld.report())
	}

	a.kill9()
	killed := time.Now()
	// The active checks must see it, whatever passive marking did first.
	c := client()
	var st serverState
	for st = upstreamServer(t, c, statusURL, "app", suffixA); st.Health != "down"; st = upstreamServer(t, c, statusURL, "app", suffixA) {
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("a not marked down by health checks 5s after kill -9: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	downAfter := time.Since(killed)
	if st.Up {
		t.Errorf("a is failing its health checks but still gets requests: %+v", st)
	}
	if downAfter > interval+500*time.Millisecond {
		t.Errorf("a marked down %v after kill -9; want within the health interval (%v) plus slack", downAfter, interval)
	}
	ld.waitOK(t, 200, 20*time.Second)

	// Back on the same address, it returns to rotation once a health check
	// passes and the passive mark from the failed connects (fail_timeout
	// after the first) has expired: both verdicts must say up.
	if _, err := startGunicorn(t, dir, "a", fmt.Sprintf("127.0.0.1:%d", portA)); err != nil {
		t.Fatalf("restart a on port %d: %v", portA, err)
	}
	restarted := time.Now()
	seenA := fromA.Load()
	due := killed.Add(failTimeout)
	if restarted.After(due) {
		due = restarted
	}
	deadline := due.Add(interval + time.Second)
	for fromA.Load() == seenA {
		if time.Now().After(deadline) {
			t.Fatalf("no traffic reached a %v after its restart (%v after kill -9); upstream_status %+v; %s",
				time.Since(restarted), time.Since(killed), upstreamServer(t, c, statusURL, "app", suffixA), ld.report())
		}
		time.Sleep(5 * time.Millisecond)
	}
	backAfter := time.Since(restarted)
	ld.waitOK(t, 200, 20*time.Second)
	stopLoad()
	// Only requests in flight on a when it died may fail: one per client.
	if f := ld.failed.Load(); f > clients {
		t.Fatalf("kill -9 of one of two servers failed more than the %d requests in flight: %s", clients, ld.report())
	}
	t.Logf("a down %v after kill -9, back in rotation %v after its restart; %s", downAfter, backAfter, ld.report())
}
