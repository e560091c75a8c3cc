package appserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tandem-server/tandem/appserver/python"
	"github.com/tandem-server/tandem/conf"
)

const testPython = "/usr/bin/python3"

// testApp is a stdlib-only WSGI app with one endpoint per behaviour under
// test.
const testApp = `
import hashlib, json, os, sys, time

def application(environ, start_response):
    path = environ['PATH_INFO']
    qs = environ.get('QUERY_STRING', '')
    if path == '/hello':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'Hello, world!']
    if path == '/pid':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(os.getpid()).encode()]
    if path == '/echo':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('X-Method', environ['REQUEST_METHOD'])])
        return [body]
    if path == '/environ':
        keys = [k for k in environ if k.isupper()]
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Connection', 'X-Drop'), ('X-Drop', '1'), ('Keep-Alive', 'timeout=5')])
        return [json.dumps({k: environ[k] for k in keys}).encode()]
    if path == '/sleep':
        time.sleep(float(qs or '1'))
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'slept']
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            for i in range(3):
                yield b'chunk%d\n' % i
                time.sleep(0.3)
        return gen()
    if path == '/upload':
        inp = environ['wsgi.input']
        first = None
        h = hashlib.sha256()
        n = 0
        while True:
            b = inp.read(1 << 20)
            if first is None:
                first = time.time()
            if not b:
                break
            n += len(b)
            h.update(b)
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps({'first_read': first, 'size': n, 'sha256': h.hexdigest()}).encode()]
    if path == '/file':
        f = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data.txt'), 'rb')
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return environ['wsgi.file_wrapper'](f)
    if path == '/crash':
        os.kill(os.getpid(), 9)
    if path == '/crash-after':
        # Answers (after sleeping QUERY_STRING seconds), then the worker
        # dies in close(), which runs once the response is all sent.
        time.sleep(float(qs or '0'))
        start_response('200 OK', [('Content-Type', 'text/plain')])
        class Body(list):
            def close(self):
                os.kill(os.getpid(), 9)
        return Body([b'answered'])
    if path == '/fail-mid':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            yield b'partial'
            time.sleep(0.05)
            raise RuntimeError('boom')
        return gen()
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'not found']
`

func requirePython(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(testPython); err != nil {
		t.Skipf("integration test needs %s: %v", testPython, err)
	}
	if len(python.Script) == 0 {
		t.Skip("appserver/python/tandem_worker.py is empty")
	}
}

// writeApp writes a module app.py with src into a fresh directory.
func writeApp(t testing.TB, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "data.txt"), []byte("file contents via sendfile\n"), 0o644)
	return dir
}

func testConf(dir string, preload bool, workers int) *conf.App {
	return &conf.App{
		Name: "t", WSGI: "app:application", Python: testPython, Chdir: dir,
		Workers: workers, Preload: preload,
		Timeout: 5 * time.Second, GracefulTimeout: 5 * time.Second,
		Queue: 256, QueueTimeout: 10 * time.Second,
	}
}

type harness struct {
	m    *Manager
	pool *Pool
	srv  *httptest.Server
	logs *observer.ObservedLogs
}

func startHarness(t testing.TB, app *conf.App) *harness {
	t.Helper()
	requirePython(t)
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	if testing.Verbose() {
		log = zap.New(zapTee(core, t))
	}
	m, err := NewManager([]*conf.App{app}, Options{Log: log, RuntimeDir: filepath.Join(t.TempDir(), "run")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	h := &harness{m: m, pool: m.Pool(app.Name), logs: logs}
	h.srv = httptest.NewServer(h.pool)
	t.Cleanup(func() {
		h.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return h
}

func (h *harness) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(h.srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, within)
	return 0
}

func forBothModes(t *testing.T, fn func(t *testing.T, preload bool)) {
	for _, preload := range []bool{true, false} {
		t.Run(fmt.Sprintf("preload=%v", preload), func(t *testing.T) { fn(t, preload) })
	}
}

// TestServe_GetAndPost: the basic request path works with and without a
// zygote.
func TestServe_GetAndPost(t *testing.T) {
	forBothModes(t, func(t *testing.T, preload bool) {
		h := startHarness(t, testConf(writeApp(t, testApp), preload, 2))
		if code, body := h.get(t, "/hello"); code != 200 || body != "Hello, world!" {
			t.Fatalf("GET /hello = %d %q", code, body)
		}
		payload := bytes.Repeat([]byte("0123456789"), 30000) // 300 kB: async body path
		resp, err := http.Post(h.srv.URL+"/echo", "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, payload) || resp.Header.Get("X-Method") != "POST" {
			t.Fatalf("POST /echo = %d, %d bytes, X-Method %q", resp.StatusCode, len(got), resp.Header.Get("X-Method"))
		}
		if resp.ContentLength != int64(len(payload)) {
			t.Fatalf("buffered response Content-Length = %d", resp.ContentLength)
		}
		if code, body := h.get(t, "/file"); code != 200 || body != "file contents via sendfile\n" {
			t.Fatalf("GET /file = %d %q", code, body)
		}
	})
}

// TestServe_Environ: the environ follows protocol.md; underscore headers
// are dropped (spoofing), hop-by-hop response headers stripped.
func TestServe_Environ(t *testing.T) {
	h := startHarness(t, testConf(writeApp(t, testApp), true, 1))
	req, _ := http.NewRequest("GET", h.srv.URL+"/environ?a=1&b=%20", nil)
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header["X-Auth_User"] = []string{"spoofed"}
	req.Header.Set("Cookie", "a=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"REQUEST_METHOD": "GET", "PATH_INFO": "/environ", "QUERY_STRING": "a=1&b=%20",
		"SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_X_MULTI": "one, two",
		"REQUEST_URI": "/environ?a=1&b=%20", "SCRIPT_NAME": "", "HTTP_COOKIE": "a=1",
		"SERVER_NAME": "127.0.0.1",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["HTTP_X_AUTH_USER"]; ok {
		t.Errorf("header with underscore reached the app")
	}
	if resp.Header.Get("X-Drop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers passed: %v", resp.Header)
	}
}

// TestServe_StreamingResponse: a generator without Content-Length arrives
// in chunks, not all at the end.
func TestServe_StreamingResponse(t *testing.T) {
	h := startHarness(t, testConf(writeApp(t, testApp), true, 1))
	start := time.Now()
	resp, err := http.Get(h.srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	first := time.Since(start)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "chunk0") {
		t.Fatalf("first read %q %v", buf[:n], err)
	}
	rest, _ := io.ReadAll(resp.Body)
	total := time.Since(start)
	if string(buf[:n])+string(rest) != "chunk0\nchunk1\nchunk2\n" {
		t.Fatalf("body %q", string(buf[:n])+string(rest))
	}
	if first > 250*time.Millisecond || total < 600*time.Millisecond {
		t.Fatalf("first chunk after %v, all after %v: not streamed", first, total)
	}
}

// TestServe_Upload100MiB: a 100 MiB upload is spilled to disk at the edge
// and the app starts reading only after the client sent its last byte.
func TestServe_Upload100MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MiB upload")
	}
	h := startHarness(t, testConf(writeApp(t, testApp), true, 1))
	const size = 100 << 20
	hash := sha256.New()
	var lastWrite atomic.Int64
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("tandem!\n"), 8192)
		for sent := 0; sent < size; sent += len(chunk) {
			hash.Write(chunk)
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		lastWrite.Store(time.Now().UnixNano())
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.srv.URL+"/upload", pr)
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		FirstRead float64 `json:"first_read"`
		Size      int64   `json:"size"`
		SHA256    string  `json:"sha256"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Size != size || got.SHA256 != hex.EncodeToString(hash.Sum(nil)) {
		t.Fatalf("app got %d bytes, hash %s", got.Size, got.SHA256)
	}
	firstRead := time.Unix(0, int64(got.FirstRead*1e9))
	if last := time.Unix(0, lastWrite.Load()); firstRead.Before(last) {
		t.Fatalf("app read the body at %v, before the client finished at %v", firstRead, last)
	}
}

// TestServe_Timeout504: a request past `timeout` gets 504, the worker's
// traceback is logged, and a new worker replaces it.
func TestServe_Timeout504(t *testing.T) {
	forBothModes(t, func(t *testing.T, preload bool) {
		app := testConf(writeApp(t, testApp), preload, 1)
		app.Timeout = 500 * time.Millisecond
		h := startHarness(t, app)
		_, pid0 := h.get(t, "/pid")
		start := time.Now()
		code, _ := h.get(t, "/sleep?5")
		if code != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 504", code)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("504 after %v", d)
		}
		waitFor(t, 5*time.Second, "replacement worker", func() bool {
			code, pid := h.get(t, "/pid")
			return code == 200 && pid != pid0
		})
		waitFor(t, 5*time.Second, "timeout exit logged with traceback", func() bool {
			exits := h.logs.FilterMessage("worker exited").FilterField(zap.Stringer("reason", RequestTimeout)).Len()
			tb := h.logs.FilterMessageSnippet("Thread").Len() + h.logs.FilterMessageSnippet("File \"").Len()
			return exits == 1 && tb > 0
		})
	})
}

// TestServe_CrashMidRequest502: a worker dying mid-request fails only that
// request (502) and is replaced.
func TestServe_CrashMidRequest502(t *testing.T) {
	forBothModes(t, func(t *testing.T, preload bool) {
		h := startHarness(t, testConf(writeApp(t, testApp), preload, 2))
		if code, _ := h.get(t, "/crash"); code != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", code)
		}
		waitFor(t, 5*time.Second, "pool back to 2 idle", func() bool {
			s := h.pool.Stats()
			return s.Idle == 2 && s.Draining == 0
		})
		if code, body := h.get(t, "/hello"); code != 200 || body != "Hello, world!" {
			t.Fatalf("after crash: %d %q", code, body)
		}
		if n := h.logs.FilterField(zap.Stringer("reason", Crash)).Len(); n != 1 {
			t.Fatalf("%d crash exits logged", n)
		}
	})
}

// TestServe_FailMidStreamCutsConnection: X after a streamed head cuts the
// client connection (the body is incomplete).
func TestServe_FailMidStreamCutsConnection(t *testing.T) {
	h := startHarness(t, testConf(writeApp(t, testApp), true, 1))
	resp, err := http.Get(h.srv.URL + "/fail-mid")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("incomplete body read without error")
	}
	if code, _ := h.get(t, "/hello"); code != 200 {
		t.Fatalf("worker not reusable after X: %d", code)
	}
}

// TestStart_ImportErrorHasTraceback: an app that fails to import makes
// Start fail with the Python traceback, with and without preload.
func TestStart_ImportErrorHasTraceback(t *testing.T) {
	forBothModes(t, func(t *testing.T, preload bool) {
		requirePython(t)
		dir := writeApp(t, "import no_such_module_xyz\n")
		m, err := NewManager([]*conf.App{testConf(dir, preload, 2)}, Options{Log: zaptest.NewLogger(t), RuntimeDir: filepath.Join(t.TempDir(), "run")})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = m.Start(ctx)
		if err == nil {
			m.Shutdown(ctx)
			t.Fatal("Start succeeded")
		}
		for _, want := range []string{"Traceback", "no_such_module_xyz", "ModuleNotFoundError"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error lacks %q:\n%v", want, err)
			}
		}
	})
}

// TestKill9UnderLoad: kill -9 of a worker under load fails at most the
// requests in flight on it, and the pool is whole again within a second.
func TestKill9UnderLoad(t *testing.T) {
	h := startHarness(t, testConf(writeApp(t, testApp), true, 4))
	ld := startLoad(h.srv.URL+"/sleep?0.02", 4, 2000)
	ld.waitOK(t, 20, 10*time.Second)
	_, pid := h.get(t, "/pid")
	var victim int
	fmt.Sscan(pid, &victim)
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "kill noticed", func() bool {
		return h.logs.FilterField(zap.Int("pid", victim)).FilterField(zap.Stringer("reason", Crash)).Len() == 1
	})
	waitFor(t, time.Second-time.Since(killed), "pool back to 4 live workers", func() bool {
		s := h.pool.Stats()
		return s.Idle+s.Busy == 4 && s.Starting == 0 && s.Draining == 0
	})
	took := time.Since(killed)
	ld.waitOK(t, 20, 10*time.Second)
	ld.stop()
	t.Logf("recovered in %v; %d ok, %d failed", took, ld.ok.Load(), ld.failed.Load())
	if ld.failed.Load() > 1 {
		t.Fatalf("%d requests failed; at most the one in flight may", ld.failed.Load())
	}
}

// TestReload_UnderLoadLosesNothing: a reload under load switches to new
// code without failing a request; old workers exit with reason Reload.
func TestReload_UnderLoadLosesNothing(t *testing.T) {
	forBothModes(t, func(t *testing.T, preload bool) {
		dir := writeApp(t, testApp)
		app := testConf(dir, preload, 2)
		h := startHarness(t, app)
		ld := startLoad(h.srv.URL+"/hello", 4, 20000)
		ld.waitOK(t, 50, 10*time.Second)
		os.WriteFile(filepath.Join(dir, "app.py"), []byte(strings.Replace(testApp, "Hello, world!", "Hello, again!", 1)), 0o644)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.m.Reload(ctx, []*conf.App{app}); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if _, body := h.get(t, "/hello"); body != "Hello, again!" {
			t.Fatalf("after reload: %q", body)
		}
		ld.waitOK(t, 50, 10*time.Second) // the load runs on the new generation too
		ld.stop()
		t.Logf("%d ok, %d failed", ld.ok.Load(), ld.failed.Load())
		if ld.failed.Load() != 0 {
			t.Fatalf("%d requests failed during reload (%d ok)", ld.failed.Load(), ld.ok.Load())
		}
		waitFor(t, 5*time.Second, "old workers exit with reason reload", func() bool {
			return h.logs.FilterMessage("worker exited").FilterField(zap.Stringer("reason", Reload)).Len() == 2
		})
	})
}

// TestReload_BrokenCodeKeepsOldGeneration: new code that fails to import
// is reported with its traceback and the old code keeps serving.
func TestReload_BrokenCodeKeepsOldGeneration(t *testing.T) {
	forBothModes(t, func(t *testing.T, preload bool) {
		dir := writeApp(t, testApp)
		app := testConf(dir, preload, 2)
		h := startHarness(t, app)
		os.WriteFile(filepath.Join(dir, "app.py"), []byte("def broken(:\n"), 0o644)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := h.m.Reload(ctx, []*conf.App{app})
		if err == nil || !strings.Contains(err.Error(), "SyntaxError") {
			t.Fatalf("Reload error = %v, want a SyntaxError traceback", err)
		}
		if code, body := h.get(t, "/hello"); code != 200 || body != "Hello, world!" {
			t.Fatalf("old generation not serving: %d %q", code, body)
		}
		if s := h.pool.Stats(); s.Generation != 1 || s.Idle != 2 {
			t.Fatalf("stats after failed reload: %+v", s)
		}
	})
}

// load is a bounded background load: clients goroutines, each sending at
// most perClient GETs to url until stop.
type load struct {
	ok, failed atomic.Int64
	stopc      chan struct{}
	wg         sync.WaitGroup
}

func startLoad(url string, clients, perClient int) *load {
	l := &load{stopc: make(chan struct{})}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; n < perClient; n++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				resp, err := http.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == 200 {
					l.ok.Add(1)
				} else {
					l.failed.Add(1)
				}
			}
		}()
	}
	return l
}

// waitOK waits until n more requests than now have succeeded.
func (l *load) waitOK(t *testing.T, n int64, d time.Duration) {
	t.Helper()
	want := l.ok.Load() + n
	waitFor(t, d, fmt.Sprintf("%d successful requests", want), func() bool { return l.ok.Load() >= want })
}

func (l *load) stop() {
	close(l.stopc)
	l.wg.Wait()
}

// TestServe_CPUScheduling: Python workers run under SCHED_BATCH unless
// the app asks for `cpu_scheduling normal`, with and without a zygote
// (a zygote's forks inherit its policy).
func TestServe_CPUScheduling(t *testing.T) {
	const schedOther, schedBatch = 0, 3
	forBothModes(t, func(t *testing.T, preload bool) {
		for _, c := range []struct {
			normal bool
			want   uintptr
		}{{false, schedBatch}, {true, schedOther}} {
			app := testConf(writeApp(t, testApp), preload, 1)
			app.NormalScheduling = c.normal
			h := startHarness(t, app)
			code, body := h.get(t, "/pid")
			var pid int
			if _, err := fmt.Sscan(body, &pid); code != 200 || err != nil {
				t.Fatalf("GET /pid = %d %q", code, body)
			}
			policy, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(pid), 0, 0)
			if errno != 0 {
				t.Fatalf("sched_getscheduler(%d): %v", pid, errno)
			}
			if policy != c.want {
				t.Errorf("NormalScheduling=%v: worker %d runs under policy %d, want %d", c.normal, pid, policy, c.want)
			}
		}
	})
}
