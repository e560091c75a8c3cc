package appserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
)

// testServer is a stdlib-only HTTP server for command pools: a threading
// http.server on the unix socket given by --socket, or on the loopback
// port given by --port or, with neither, by $PORT. One endpoint per
// behaviour under test.
const testServer = `
import json, os, signal, socket, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.exists(os.path.join(HERE, 'crash')):
    print('refusing to start: crash flag', file=sys.stderr, flush=True)
    sys.exit(1)

class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def reply(self, code, body, ctype='text/plain'):
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, qs = self.path.partition('?')
        if path == '/hello':
            return self.reply(200, ('Hello, ' + os.environ.get('GREETING', 'world')).encode())
        if path == '/pid':
            return self.reply(200, str(os.getpid()).encode())
        if path == '/sleep':
            time.sleep(float(qs or '1'))
            return self.reply(200, b'slept')
        if path == '/headers':
            return self.reply(200, json.dumps(dict(self.headers)).encode(), 'application/json')
        if path == '/env':
            env = {k: os.environ.get(k) for k in ('TANDEM_SOCKET', 'PORT')}
            env['argv'] = sys.argv[1:]
            env['uid'] = os.getuid()
            return self.reply(200, json.dumps(env).encode(), 'application/json')
        if path == '/stream':
            self.send_response(200)
            self.send_header('Content-Type', 'text/event-stream')
            self.send_header('Connection', 'close')
            self.end_headers()
            for i in range(3):
                self.wfile.write(b'data: %d\n\n' % i)
                self.wfile.flush()
                time.sleep(0.3)
            self.close_connection = True
            return
        if path == '/short':
            # Declares 100 bytes, sends 9 and closes.
            self.send_response(200)
            self.send_header('Content-Length', '100')
            self.end_headers()
            self.wfile.write(b'only this')
            self.wfile.flush()
            self.close_connection = True
            return
        if path == '/ws' and self.headers.get('Upgrade', '').lower() == 'websocket':
            self.send_response(101)
            self.send_header('Upgrade', 'websocket')
            self.send_header('Connection', 'Upgrade')
            self.end_headers()
            self.wfile.flush()
            while True:
                line = self.rfile.readline()
                if not line:
                    break
                self.wfile.write(b'echo ' + line)
                self.wfile.flush()
            self.close_connection = True
            return
        self.reply(404, b'not found')

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        self.reply(200, body, 'application/octet-stream')

class UnixServer(ThreadingHTTPServer):
    address_family = socket.AF_UNIX
    def server_bind(self):
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = 'localhost', 0
    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ('unix', 0)

for cls in (ThreadingHTTPServer, UnixServer):
    cls.daemon_threads = True
    cls.request_queue_size = 128

def stop(*_):
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)

args = sys.argv[1:]
if args[:1] == ['--socket']:
    server = UnixServer(args[1], Handler)
else:
    port = args[1] if args[:1] == ['--port'] else os.environ['PORT']
    server = ThreadingHTTPServer(('127.0.0.1', int(port)), Handler)
print('listening on', server.server_address, flush=True)
server.serve_forever()
`

// writeServer writes server.py with testServer into a fresh directory.
func writeServer(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(testServer), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cmdConf is a command app running args in dir.
func cmdConf(dir string, workers int, args ...string) *conf.App {
	return &conf.App{
		Name: "c", Command: args, Chdir: dir, Workers: workers,
		Timeout: 5 * time.Second, GracefulTimeout: 5 * time.Second,
		Queue: 256, QueueTimeout: 10 * time.Second,
	}
}

// pyServer is the command line of testServer on $TANDEM_SOCKET.
func pyServer() []string {
	return []string{testPython, "server.py", "--socket", "$TANDEM_SOCKET"}
}

// fetch is get for other goroutines than the test's: errors are returned.
func (h *harness) fetch(path string) (int, string, error) {
	resp, err := http.Get(h.srv.URL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func pidOf(t testing.TB, h *harness) int {
	t.Helper()
	code, body := h.get(t, "/pid")
	var pid int
	if _, err := fmt.Sscan(body, &pid); code != 200 || err != nil {
		t.Fatalf("GET /pid = %d %q", code, body)
	}
	return pid
}

// TestCommand_ServesAcrossWorkers: a command pool serves GET and streamed
// POST bodies, tells the app who the client is, and spreads concurrent
// requests over every worker; the worker's output reaches the log.
func TestCommand_ServesAcrossWorkers(t *testing.T) {
	h := startHarness(t, cmdConf(writeServer(t), 3, pyServer()...))
	if code, body := h.get(t, "/hello"); code != 200 || body != "Hello, world" {
		t.Fatalf("GET /hello = %d %q", code, body)
	}
	payload := bytes.Repeat([]byte("0123456789"), 30000)
	resp, err := http.Post(h.srv.URL+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Fatalf("POST = %d, %d bytes back of %d (read error: %v)\nlog: %v", resp.StatusCode, len(got), len(payload), rerr, h.logs.All())
	}

	req, _ := http.NewRequest("GET", h.srv.URL+"/headers", nil)
	req.Host = "example.com"
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // a client must not choose its address
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]string
	json.NewDecoder(resp.Body).Decode(&hdr)
	resp.Body.Close()
	want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": "example.com", "Host": "example.com"}
	for k, v := range want {
		if hdr[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, hdr[k], v, hdr)
		}
	}

	var env map[string]any
	_, body := h.get(t, "/env")
	json.Unmarshal([]byte(body), &env)
	sock, _ := env["TANDEM_SOCKET"].(string)
	if !strings.HasPrefix(sock, h.m.RuntimeDir()+"/") || env["PORT"] != nil {
		t.Errorf("env %v: want TANDEM_SOCKET in %s and no PORT", env, h.m.RuntimeDir())
	}
	if args, _ := env["argv"].([]any); len(args) != 2 || args[1] != sock {
		t.Errorf("argv %v: $TANDEM_SOCKET not expanded to %s", env["argv"], sock)
	}

	// Six concurrent requests over three workers: two each.
	var mu sync.Mutex
	pids := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := h.fetch("/sleep?0.3")
			if code != 200 {
				t.Errorf("GET /sleep = %d %v", code, err)
			}
			mu.Lock()
			pids[body]++
			mu.Unlock()
		}()
	}
	waitFor(t, 5*time.Second, "six requests in flight", func() bool { return h.pool.Stats().InFlight == 6 })
	if s := h.pool.Stats(); s.Busy != 3 || s.Queued != 0 {
		t.Errorf("with six in flight: %+v, want three busy workers and nothing queued", s)
	}
	wg.Wait()
	if n := len(h.logs.FilterMessageSnippet("listening on").All()); n != 3 {
		t.Errorf("%d workers' output lines logged, want 3", n)
	}
}

// TestCommand_StreamsResponses: a response without a length (server-sent
// events) reaches the client event by event.
func TestCommand_StreamsResponses(t *testing.T) {
	h := startHarness(t, cmdConf(writeServer(t), 1, pyServer()...))
	start := time.Now()
	resp, err := http.Get(h.srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	first := time.Since(start)
	if err != nil || line != "data: 0\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	io.Copy(io.Discard, resp.Body)
	if total := time.Since(start); first > 250*time.Millisecond || total < 600*time.Millisecond {
		t.Fatalf("first event after %v, all after %v: not streamed", first, total)
	}
}

// TestCommand_BodyCutShortReachesTheClient: a worker that closes before
// the body it declared ends gives the client the status and the bytes it
// sent, then the cut (as nginx does), not an empty reply; the worker is
// given back.
func TestCommand_BodyCutShortReachesTheClient(t *testing.T) {
	h := startHarness(t, cmdConf(writeServer(t), 1, pyServer()...))
	resp, err := http.Get(h.srv.URL + "/short")
	if err != nil {
		t.Fatalf("no response at all (an empty reply): %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("the client got a complete response from a body cut short")
	}
	if resp.StatusCode != http.StatusOK || string(body) != "only this" {
		t.Errorf("client got %d %q before the cut, want 200 %q", resp.StatusCode, body, "only this")
	}
	if code, got := h.get(t, "/hello"); code != 200 || got != "Hello, world" {
		t.Fatalf("GET /hello after the cut: %d %q", code, got)
	}
}

// TestCommand_UpgradePassesThrough: a WebSocket upgrade reaches the worker
// and the tunnel carries bytes both ways; it counts as a request in
// flight until it closes.
func TestCommand_UpgradePassesThrough(t *testing.T) {
	h := startHarness(t, cmdConf(writeServer(t), 1, pyServer()...))
	c, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprintf(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Fatalf("through the tunnel: %q %v", line, err)
	}
	if s := h.pool.Stats(); s.InFlight != 1 {
		t.Fatalf("open tunnel: %+v, want one request in flight", s)
	}
	c.Close()
	waitFor(t, 5*time.Second, "tunnel closed", func() bool { return h.pool.Stats().InFlight == 0 })
}

// TestCommand_ListenModes: $PORT gives the worker a loopback port instead
// of a socket; a command that names neither variable gets both and may
// listen on either (here: $PORT from its environment, as Node apps do).
func TestCommand_ListenModes(t *testing.T) {
	for name, args := range map[string][]string{
		"port-arg": {testPython, "server.py", "--port", "${PORT}"},
		"env-only": {testPython, "server.py"},
	} {
		t.Run(name, func(t *testing.T) {
			h := startHarness(t, cmdConf(writeServer(t), 2, args...))
			if code, body := h.get(t, "/hello"); code != 200 || body != "Hello, world" {
				t.Fatalf("GET /hello = %d %q", code, body)
			}
			var env map[string]any
			_, body := h.get(t, "/env")
			json.Unmarshal([]byte(body), &env)
			port, _ := env["PORT"].(string)
			if port == "" || (name == "port-arg" && env["TANDEM_SOCKET"] != nil) || (name == "env-only" && env["TANDEM_SOCKET"] == nil) {
				t.Fatalf("env %v", env)
			}
			if args, _ := env["argv"].([]any); name == "port-arg" && (len(args) != 2 || args[1] != port) {
				t.Fatalf("argv %v: ${PORT} not expanded to %s", args, port)
			}
		})
	}
}

// TestCommand_Timeout504KeepsWorker: a request past `timeout` gets 504;
// the worker, which may be serving others, is not killed.
func TestCommand_Timeout504KeepsWorker(t *testing.T) {
	app := cmdConf(writeServer(t), 1, pyServer()...)
	app.Timeout = 300 * time.Millisecond
	h := startHarness(t, app)
	pid := pidOf(t, h)
	start := time.Now()
	if code, _ := h.get(t, "/sleep?3"); code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("504 after %v", d)
	}
	if got := pidOf(t, h); got != pid {
		t.Fatalf("worker replaced (%d → %d) after a slow request", pid, got)
	}
	if h.logs.FilterMessage("worker exited").Len() != 0 || h.logs.FilterMessageSnippet("request timed out").Len() != 1 {
		t.Fatal("want the timeout logged once and no worker exit")
	}
}

// TestCommand_Kill9UnderLoad: kill -9 of one worker under a bounded
// concurrent load fails at most the requests in flight on it, and the
// pool is back to its size within a second.
func TestCommand_Kill9UnderLoad(t *testing.T) {
	h := startHarness(t, cmdConf(writeServer(t), 4, pyServer()...))
	kill9UnderLoad(t, h, 4, time.Second)
}

// kill9UnderLoad runs the kill -9 check on a pool of n workers that
// answers /pid and /sleep: clients = 2n concurrent clients, so least-loaded
// dispatch never puts more than 2 requests on one worker, and at most
// those 2 may fail.
func kill9UnderLoad(t *testing.T, h *harness, n int, within time.Duration) {
	t.Helper()
	const perWorker = 2
	ld := startLoad(h.srv.URL+"/sleep?0.02", perWorker*n, 100000)
	stop := sync.OnceFunc(ld.stop)
	defer stop()
	ld.waitOK(t, 50, 10*time.Second)
	var victim, busy int
	waitFor(t, 5*time.Second, "a worker with requests in flight", func() bool {
		victim, busy = busiest(h.pool)
		return busy > 0
	})
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "pool back to full strength", func() bool {
		s := h.pool.Stats()
		return h.logs.FilterField(zap.Int("pid", victim)).FilterField(zap.Stringer("reason", Crash)).Len() == 1 &&
			s.Idle+s.Busy == n && s.Starting == 0 && s.Draining == 0
	})
	took := time.Since(killed)
	ld.waitOK(t, 50, 10*time.Second)
	stop()
	t.Logf("kill -9 of a worker with %d requests in flight: %d workers back in %v; load %d ok, %d failed",
		busy, n, took.Round(time.Millisecond), ld.ok.Load(), ld.failed.Load())
	if ld.failed.Load() > perWorker {
		t.Errorf("%d requests failed; at most the %d in flight on the killed worker may", ld.failed.Load(), perWorker)
	}
	if took > within {
		t.Errorf("pool back to %d workers after %v, want within %v", n, took, within)
	}
}

// busiest returns the pid of the worker with the most requests in flight
// and their number.
func busiest(p *Pool) (pid, inflight int) {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	for _, w := range p.a.workers {
		if w.state == Busy && w.inflight > inflight {
			pid, inflight = w.pid, w.inflight
		}
	}
	return pid, inflight
}

// TestCommand_CrashLoopBacksOff: a worker that keeps exiting before it
// listens is respawned with growing delays and the loop is reported; the
// other workers keep serving, and the pool heals once starts succeed.
func TestCommand_CrashLoopBacksOff(t *testing.T) {
	dir := writeServer(t)
	h := startHarness(t, cmdConf(dir, 2, pyServer()...))
	flag := filepath.Join(dir, "crash")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pidOf(t, h), syscall.SIGKILL)
	waitFor(t, 10*time.Second, "crash loop reported", func() bool {
		return h.logs.FilterMessageSnippet("crash-looping").Len() > 0
	})
	fails := h.logs.FilterMessage("worker failed to start").All()
	if len(fails) < 2 {
		t.Fatalf("%d failed starts before the loop was reported", len(fails))
	}
	for i, want := range []time.Duration{backoffBase} {
		if gap := fails[i+1].Time.Sub(fails[i].Time); gap < want {
			t.Fatalf("respawn %d after %v, want a backoff of at least %v", i+2, gap, want)
		}
	}
	if !strings.Contains(fmt.Sprint(fails[0].ContextMap()["error"]), "crash flag") {
		t.Errorf("failed start does not carry the worker's output: %v", fails[0].ContextMap())
	}
	for i := 0; i < 5; i++ {
		if code, _ := h.get(t, "/hello"); code != 200 {
			t.Fatalf("during the crash loop: %d", code)
		}
	}
	os.Remove(flag)
	waitFor(t, 2*backoffMax, "pool healed", func() bool {
		s := h.pool.Stats()
		return s.Idle+s.Busy == 2 && s.Starting == 0
	})
}

// TestCommand_MaxRequestsRecycles: with max_requests 5 the worker is
// replaced after its fifth request, logged as max_requests.
func TestCommand_MaxRequestsRecycles(t *testing.T) {
	app := cmdConf(writeServer(t), 1, pyServer()...)
	app.MaxRequests = 5
	h := startHarness(t, app)
	first := pidOf(t, h)
	for i := 0; i < 4; i++ {
		if pid := pidOf(t, h); pid != first {
			t.Fatalf("worker replaced after %d requests", i+1)
		}
	}
	waitFor(t, 5*time.Second, "replacement after 5 requests", func() bool {
		code, body := h.get(t, "/pid")
		return code == 200 && body != fmt.Sprint(first)
	})
	if n := h.logs.FilterMessage("worker exited").FilterField(zap.Stringer("reason", MaxRequests)).Len(); n != 1 {
		t.Fatalf("%d max_requests exits logged", n)
	}
}

// TestCommand_GracefulShutdown: Shutdown lets a request in flight finish,
// refuses new ones, and the workers exit by SIGTERM, not SIGKILL.
func TestCommand_GracefulShutdown(t *testing.T) {
	h := startHarness(t, cmdConf(writeServer(t), 2, pyServer()...))
	done := make(chan string, 1)
	go func() {
		code, body, err := h.fetch("/sleep?1")
		done <- fmt.Sprint(code, " ", body, err)
	}()
	waitFor(t, 5*time.Second, "request in flight", func() bool { return h.pool.Stats().InFlight == 1 })
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- h.m.Shutdown(ctx)
	}()
	waitFor(t, 5*time.Second, "new requests refused", func() bool {
		code, _ := h.get(t, "/hello")
		return code == http.StatusServiceUnavailable
	})
	if got := <-done; got != "200 slept<nil>" {
		t.Fatalf("in-flight request: %s", got)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	exits := h.logs.FilterMessage("worker exited").FilterField(zap.Stringer("reason", Shutdown)).All()
	if len(exits) != 2 {
		t.Fatalf("%d shutdown exits logged", len(exits))
	}
	for _, e := range exits {
		if code, ok := e.ContextMap()["exit_code"]; !ok || code != int64(0) {
			t.Fatalf("worker did not exit cleanly on SIGTERM: %v", e.ContextMap())
		}
	}
}

// TestCommand_ReloadUnderLoadLosesNothing: a reload under load switches to
// the new generation without failing a request; the old workers exit
// with reason reload.
func TestCommand_ReloadUnderLoadLosesNothing(t *testing.T) {
	app := cmdConf(writeServer(t), 2, pyServer()...)
	app.Env = []conf.EnvVar{{Key: "GREETING", Value: "one"}}
	h := startHarness(t, app)
	ld := startLoad(h.srv.URL+"/hello", 4, 20000)
	stop := sync.OnceFunc(ld.stop)
	defer stop()
	ld.waitOK(t, 50, 10*time.Second)
	next := *app
	next.Env = []conf.EnvVar{{Key: "GREETING", Value: "two"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.m.Reload(ctx, []*conf.App{&next}); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if _, body := h.get(t, "/hello"); body != "Hello, two" {
		t.Fatalf("after reload: %q", body)
	}
	ld.waitOK(t, 50, 10*time.Second)
	stop()
	t.Logf("%d ok, %d failed", ld.ok.Load(), ld.failed.Load())
	if ld.failed.Load() != 0 {
		t.Fatalf("%d requests failed during reload", ld.failed.Load())
	}
	waitFor(t, 5*time.Second, "old workers exit with reason reload", func() bool {
		return h.logs.FilterMessage("worker exited").FilterField(zap.Stringer("reason", Reload)).Len() == 2
	})
}

// TestCommand_StartFailures: a command that cannot start fails Start (or
// a reload, which keeps the old generation) with the reason and the
// worker's output, without waiting for a timeout.
func TestCommand_StartFailures(t *testing.T) {
	requirePython(t)
	dir := writeServer(t)
	exits := []string{testPython, "-c", "import sys; print('bad settings', file=sys.stderr); sys.exit(2)"}
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"exits":   {exits, []string{"failed to start", "bad settings", "exit code 2"}},
		"missing": {[]string{"./no-such-server"}, []string{"no-such-server", "no such file"}},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := NewManager([]*conf.App{cmdConf(dir, 2, tc.args...)}, Options{Log: zap.NewNop(), RuntimeDir: filepath.Join(t.TempDir(), "run")})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err = m.Start(ctx)
			if err == nil {
				m.Shutdown(ctx)
				t.Fatal("Start succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	t.Run("reload", func(t *testing.T) {
		h := startHarness(t, cmdConf(dir, 1, pyServer()...))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.m.Reload(ctx, []*conf.App{cmdConf(dir, 1, exits...)}); err == nil || !strings.Contains(err.Error(), "bad settings") {
			t.Fatalf("Reload error = %v", err)
		}
		if code, body := h.get(t, "/hello"); code != 200 || body != "Hello, world" {
			t.Fatalf("old generation not serving: %d %q", code, body)
		}
	})
}

// TestCommand_ReloadBetweenKinds: an app can move from wsgi to command
// and back by reload, under load, without failing a request.
func TestCommand_ReloadBetweenKinds(t *testing.T) {
	dir := writeApp(t, testApp)
	os.WriteFile(filepath.Join(dir, "server.py"), []byte(testServer), 0o644)
	wsgi := testConf(dir, true, 2)
	command := cmdConf(dir, 2, pyServer()...)
	command.Name = wsgi.Name
	h := startHarness(t, wsgi)
	ld := startLoad(h.srv.URL+"/hello", 4, 20000)
	stop := sync.OnceFunc(ld.stop)
	defer stop()
	for _, step := range []struct {
		app  *conf.App
		body string
	}{{command, "Hello, world"}, {wsgi, "Hello, world!"}} {
		ld.waitOK(t, 50, 10*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := h.m.Reload(ctx, []*conf.App{step.app})
		cancel()
		if err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if _, body := h.get(t, "/hello"); body != step.body {
			t.Fatalf("after reload: %q, want %q", body, step.body)
		}
	}
	ld.waitOK(t, 50, 10*time.Second)
	stop()
	t.Logf("%d ok, %d failed", ld.ok.Load(), ld.failed.Load())
	if ld.failed.Load() != 0 {
		t.Fatalf("%d requests failed across the reloads", ld.failed.Load())
	}
}

// TestCommand_RunsAsUser: with `user`, the worker runs as that user and
// can still create its socket in tandem's private runtime directory.
func TestCommand_RunsAsUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch users")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	dir := writeServer(t)
	// The app and the runtime dir's ancestors must be reachable by nobody.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	app := cmdConf(dir, 1, pyServer()...)
	app.User = "nobody"
	h := startHarness(t, app)
	var env map[string]any
	_, body := h.get(t, "/env")
	json.Unmarshal([]byte(body), &env)
	if fmt.Sprint(env["uid"]) != nobody.Uid {
		t.Fatalf("worker uid %v, want %s", env["uid"], nobody.Uid)
	}
	fi, err := os.Stat(h.m.RuntimeDir())
	if err != nil || fi.Mode().Perm()&0o044 != 0 {
		t.Fatalf("runtime dir %v %v: must not be readable by others", fi.Mode(), err)
	}
}

// TestExpandVars: only $TANDEM_SOCKET and $PORT (bare or braced) are
// replaced; every other $ stays as written, since there is no shell.
func TestExpandVars(t *testing.T) {
	vars := map[string]string{"TANDEM_SOCKET": "/run/w1.sock", "PORT": "8001"}
	for in, want := range map[string]string{
		"--uds=$TANDEM_SOCKET":     "--uds=/run/w1.sock",
		"unix:${TANDEM_SOCKET}":    "unix:/run/w1.sock",
		"127.0.0.1:$PORT":          "127.0.0.1:8001",
		"$PORTAL $HOME ${X} $ $$1": "$PORTAL $HOME ${X} $ $$1",
		"${PORT":                   "${PORT",
		"$PORT$PORT":               "80018001",
	} {
		if got := expandVars(in, vars); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}
