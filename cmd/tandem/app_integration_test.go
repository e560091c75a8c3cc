package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyExampleDir copies examples/NAME to a temp dir and rewrites its
// listen address to port 0.
func copyExampleDir(t *testing.T, name, listen string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", "../../examples/"+name+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v\n%s", err, out)
	}
	confPath := filepath.Join(dir, "tandem.conf")
	b, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), listen, "127.0.0.1:0", 1)
	if s == string(b) {
		t.Fatalf("example %s no longer listens on %s; update the test", name, listen)
	}
	writeFile(t, confPath, s)
	return dir, confPath
}

func needModule(t *testing.T, module string) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import "+module).Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 module %s missing in CI (apt-get install python3-%s)", module, module)
		}
		t.Skipf("/usr/bin/python3 cannot import %s (apt-get install python3-%s)", module, module)
	}
}

// The README example: static files from the edge and a stdlib WSGI app
// from tandem's worker pool, in one process.
func TestExample_QuickstartApp(t *testing.T) {
	dir, confPath := copyExampleDir(t, "quickstart", "127.0.0.1:8080")
	in := startArgs(t, dir, confPath, "run", "-c", confPath, "--pid", filepath.Join(dir, "t.pid"))
	c := client()
	r := do(t, c, "GET", in.url("/app/"), nil)
	if r.status != 200 || !strings.Contains(r.body, "Hello from a Python worker") {
		t.Fatalf("GET /app/ = %d %.200q", r.status, r.body)
	}
	resp, err := c.PostForm(in.url("/app/"), url.Values{"name": {"Ann <b>"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "Hello, Ann &lt;b&gt;!") {
		t.Fatalf("POST /app/ = %d %q", resp.StatusCode, b)
	}
	r = do(t, c, "GET", in.url("/app/stream"), nil)
	if r.body != "line 0\nline 1\nline 2\nline 3\nline 4\n" {
		t.Fatalf("stream body %q", r.body)
	}
	if r := do(t, c, "GET", in.url("/"), nil); r.status != 200 || r.header.Get("ETag") == "" {
		t.Fatalf("static index next to the app: %d", r.status)
	}
	if code := in.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if n := countWorkerProcs(in.cmd.Process.Pid); n != 0 {
		t.Fatalf("%d worker processes left after stop", n)
	}
}

// Flask from Debian's python3-flask, behind the edge.
func TestExample_Flask(t *testing.T) {
	needModule(t, "flask")
	dir, confPath := copyExampleDir(t, "flask", "127.0.0.1:8081")
	in := startArgs(t, dir, confPath, "run", "-c", confPath, "--pid", filepath.Join(dir, "t.pid"))
	c := client()
	if r := do(t, c, "GET", in.url("/"), nil); r.status != 200 || r.body != "Hello from Flask under tandem\n" {
		t.Fatalf("GET / = %d %q", r.status, r.body)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	resp, err := c.Post(in.url("/echo"), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var echo struct {
		Length int `json:"length"`
	}
	err = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if err == nil && resp.StatusCode == 413 {
		t.Fatal("10 MiB POST hit client_max_body_size; the example should allow it")
	}
	if err != nil || echo.Length != len(body) {
		t.Fatalf("POST /echo 10 MiB: status %d, length %d, err %v", resp.StatusCode, echo.Length, err)
	}
	r := do(t, c, "GET", in.url("/cookies"), map[string]string{"Cookie": "a=1"})
	if got := r.header.Values("Set-Cookie"); len(got) != 2 || !strings.Contains(r.body, `"seen":"1"`) {
		t.Fatalf("cookies: Set-Cookie %q body %q", got, r.body)
	}
	r = do(t, c, "GET", in.url("/static/app.css"), nil)
	if r.status != 200 || r.header.Get("ETag") == "" || r.header.Get("Cache-Control") != "max-age=86400" {
		t.Fatalf("static from the edge: %d %v", r.status, r.header)
	}
	if r := do(t, c, "GET", in.url("/nope"), nil); r.status != 404 {
		t.Fatalf("Flask 404 passed through as %d", r.status)
	}
}

// A Django project with its static files served by the edge.
func TestExample_Django(t *testing.T) {
	needModule(t, "django")
	dir, confPath := copyExampleDir(t, "django", "127.0.0.1:8082")
	in := startArgs(t, dir, confPath, "run", "-c", confPath, "--pid", filepath.Join(dir, "t.pid"))
	c := client()
	r := do(t, c, "GET", in.url("/"), nil)
	if r.status != 200 || !strings.Contains(r.body, "Hello from Django under tandem") || !strings.Contains(r.body, "/static/site.css") {
		t.Fatalf("GET / = %d %.300q", r.status, r.body)
	}
	r = do(t, c, "GET", in.url("/static/site.css"), nil)
	if r.status != 200 || !strings.Contains(r.body, "#0c4b33") || r.header.Get("ETag") == "" {
		t.Fatalf("GET /static/site.css = %d %q", r.status, r.body)
	}
	resp, err := c.Post(in.url("/echo"), "text/plain", strings.NewReader("hello django"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"length": 12`) {
		t.Fatalf("POST /echo = %d %q", resp.StatusCode, b)
	}
}

var pidRE = regexp.MustCompile(`pid (\d+)`)

// kill -9 of a worker under load fails at most the requests that were on
// it, and the pool is back to full size within a second (preload on).
func TestKill9Worker_UnderLoad(t *testing.T) {
	const workers = 3
	in := startTandem(t, `
app hello {
    wsgi hello:application;
    chdir {{DIR}};
    workers 3;
}
site _ {
    listen 127.0.0.1:0;
    location / { app hello; }
}
`, func(dir string) {
		src, err := os.ReadFile("../../examples/quickstart/hello.py")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "hello.py"), string(src))
	})
	tandemPid := in.cmd.Process.Pid
	waitWorkers(t, tandemPid, workers, 10*time.Second)

	const clients = 4
	ld := startLoad(in.url("/"), clients, 5000, func(status int, _ string) bool { return status == 200 })
	ld.waitOK(t, 200, 20*time.Second)
	victim := servedPid(t, in.url("/"))
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitGone(t, victim, 5*time.Second)
	waitWorkers(t, tandemPid, workers, time.Second-time.Since(killed))
	back := time.Since(killed)
	ld.waitOK(t, 200, 20*time.Second)
	ld.stop()
	// Each client has one request in flight; only the killed worker's can fail.
	if f := ld.failed.Load(); f > 1 {
		t.Fatalf("kill -9 of one worker failed more than its one in-flight request: %s", ld.report())
	}
	in.waitLog(`"reason": "crash", "requests"`, 5*time.Second)
	in.waitLog(`"signal": 9`, 5*time.Second)
	t.Logf("pool back to %d workers %v after kill -9; %s", workers, back, ld.report())
}

func servedPid(t *testing.T, u string) int {
	t.Helper()
	r := do(t, client(), "GET", u, nil)
	m := pidRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no pid in %q", r.body)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// countWorkerProcs counts live (non-zombie) children of tandem running the
// worker script, the zygote included.
func countWorkerProcs(parent int) int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", parent)) || strings.Contains(string(status), "State:\tZ") {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte("tandem_worker.py")) {
			n++
		}
	}
	return n
}

// waitWorkers waits until tandem has n workers plus the zygote.
func waitWorkers(t *testing.T, parent, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for countWorkerProcs(parent) != n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("tandem has %d worker processes (with the zygote), want %d, after %v", countWorkerProcs(parent), n+1, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still alive", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var _ = http.StatusOK

const versionApp = `
VERSION = %q

def application(environ, start_response):
    body = VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// SIGHUP with new app code under load: the new generation takes over with
// no failed request; code that fails to import leaves the old one serving
// and its traceback in the log.
func TestAppReload_UnderLoad(t *testing.T) {
	in := startTandem(t, `
app v {
    wsgi verapp:application;
    chdir {{DIR}};
    workers 2;
}
site _ {
    listen 127.0.0.1:0;
    location / { app v; }
}
`, func(dir string) { writeFile(t, filepath.Join(dir, "verapp.py"), fmt.Sprintf(versionApp, "v1")) })
	ld := startLoad(in.url("/"), 3, 20000, func(status int, body string) bool {
		return status == 200 && (body == "v1" || body == "v2")
	})
	ld.waitOK(t, 100, 20*time.Second)
	writeFile(t, filepath.Join(in.dir, "verapp.py"), fmt.Sprintf(versionApp, "v2"))
	_ = in.cmd.Process.Signal(syscall.SIGHUP)
	waitBody(t, in.url("/"), "v2", 20*time.Second)
	ld.waitOK(t, 100, 20*time.Second)

	writeFile(t, filepath.Join(in.dir, "verapp.py"), "import no_such_module_here\n")
	_ = in.cmd.Process.Signal(syscall.SIGHUP)
	in.waitLog("No module named", 20*time.Second)
	in.waitLog("app failed to boot; keeping the serving generation", 5*time.Second)
	ld.waitOK(t, 100, 20*time.Second)
	ld.stop()
	if ld.failed.Load() != 0 {
		t.Fatalf("app reloads under load: %s", ld.report())
	}
	if r := do(t, client(), "GET", in.url("/"), nil); r.body != "v2" {
		t.Fatalf("after a failed reload the app serves %q, want the previous v2", r.body)
	}
	t.Logf("%s, across a good and a failed app reload", ld.report())
}

// An app that cannot import stops `tandem run` with the traceback.
func TestAppImportError_StopsRun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.py"), "def application(e, s):\n    return []\nraise RuntimeError('boom at import')\n")
	cfg := filepath.Join(dir, "tandem.conf")
	writeFile(t, cfg, "pid_file "+dir+"/t.pid;\napp bad { wsgi bad:application; chdir "+dir+"; workers 1; }\nsite _ { listen 127.0.0.1:0; location / { app bad; } }\n")
	out, err := exec.Command(binPath, "run", "-c", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("run with a broken app: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{"app bad failed to import", "Traceback", "RuntimeError: boom at import",
		"app failed to boot; nothing serves it"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// At start there is no older generation that could keep serving.
	if strings.Contains(string(out), "keeping the serving generation") {
		t.Errorf("a failed first start claims a serving generation:\n%s", out)
	}
}

// `user` and `group` drop the workers' privileges: run as root, the app
// sees nobody's uid, the group asked for (else nobody's own) and no
// supplementary groups, for preload on (the zygote forks the workers) and
// off (fresh interpreters).
func TestApp_UserGroupDropsPrivileges(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch users")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	daemon, err := user.LookupGroup("daemon")
	if err != nil {
		t.Skipf("no group daemon: %v", err)
	}
	for _, tc := range []struct{ preload, group, gid string }{
		{"on", "", nobody.Gid},               // the user's own group
		{"off", "group daemon;", daemon.Gid}, // group overrides it
	} {
		preload := tc.preload
		t.Run("preload "+preload, func(t *testing.T) {
			in := startTandem(t, `
app ids {
    wsgi ids:app;
    chdir {{DIR}}/app;
    workers 2;
    preload `+preload+`;
    user nobody;
    `+tc.group+`
}
site _ {
    listen 127.0.0.1:0;
    location / { app ids; }
}
`, func(dir string) {
				// The app's folder must be readable by nobody, as it would
				// be in a deployment (t.TempDir is 0700).
				for d := dir; d != "/"; d = filepath.Dir(d) {
					st, err := os.Stat(d)
					if err == nil && st.Mode().Perm()&0o005 != 0o005 {
						_ = os.Chmod(d, st.Mode().Perm()|0o005)
					}
				}
				writeFile(t, filepath.Join(dir, "app", "ids.py"), `import os

def app(environ, start_response):
    body = ('%d %d %s' % (os.getuid(), os.getgid(), sorted(os.getgroups()))).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
`)
				_ = os.Chmod(filepath.Join(dir, "app"), 0o755)
				_ = os.Chmod(filepath.Join(dir, "app", "ids.py"), 0o644)
			})
			r := do(t, client(), "GET", in.url("/"), nil)
			want := fmt.Sprintf("%s %s []", nobody.Uid, tc.gid)
			if r.status != 200 || r.body != want {
				t.Fatalf("GET / = %d %q, want 200 %q\n%s", r.status, r.body, want, in.logText())
			}
		})
	}
}

// The first app can come with a reload: a config that had none (so no
// app server was started) gains one on SIGHUP, and loses it again.
func TestAppAddedByReload(t *testing.T) {
	const noApp = `
site _ {
    listen 127.0.0.1:0;
    return 200 "no app";
}
`
	in := startTandem(t, noApp, func(dir string) {
		writeFile(t, filepath.Join(dir, "first.py"), `
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from the first app"]
`)
	})
	c := client()
	if r := do(t, c, "GET", in.url("/"), nil); r.body != "no app" {
		t.Fatalf("before: %d %q", r.status, r.body)
	}
	withApp := strings.ReplaceAll(`
app first {
    wsgi first:application;
    chdir {{DIR}};
    workers 1;
}
site _ {
    listen 127.0.0.1:0;
    location / { app first; }
}
`, "{{DIR}}", in.dir)
	// The listen line stays "127.0.0.1:0": an unchanged address keeps its
	// socket (and port) across reloads.
	for i, step := range []struct{ conf, want string }{
		{withApp, "from the first app"},
		{noApp, "no app"},
		{withApp, "from the first app"},
	} {
		writeFile(t, in.conf, step.conf)
		if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			r := do(t, c, "GET", in.url("/"), nil)
			if r.status == 200 && r.body == step.want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reload %d: GET / = %d %q, want %q\n%s", i+1, r.status, r.body, step.want, in.logText())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if strings.Contains(in.logText(), "reload failed") {
		t.Errorf("a reload failed:\n%s", in.logText())
	}
}

// An app's print() reaches the error log at info level (marked
// stream=stdout), its stderr at error level: nothing an app writes is
// dropped, with preload on (forked workers share the zygote's pipes) and
// off.
func TestApp_OutputReachesTheLog(t *testing.T) {
	for _, preload := range []string{"on", "off"} {
		t.Run("preload "+preload, func(t *testing.T) {
			in := startTandem(t, `
app p {
    wsgi papp:application;
    chdir {{DIR}};
    workers 1;
    preload `+preload+`;
}
site _ {
    listen 127.0.0.1:0;
    location / { app p; }
}
`, func(dir string) {
				writeFile(t, filepath.Join(dir, "papp.py"), `import sys
def application(environ, start_response):
    print("printed by the app", environ["PATH_INFO"])
    sys.stderr.write("stderr of the app\n")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
`)
			})
			if r := do(t, client(), "GET", in.url("/x"), nil); r.status != 200 {
				t.Fatalf("GET /x = %d", r.status)
			}
			line := in.waitLog("printed by the app /x", 10*time.Second)
			if !strings.Contains(line, "INFO") || !strings.Contains(line, `"stream": "stdout"`) {
				t.Errorf("print() logged as %q, want INFO with stream stdout", line)
			}
			if line := in.waitLog("stderr of the app", 10*time.Second); !strings.Contains(line, "ERROR") {
				t.Errorf("stderr logged as %q, want ERROR", line)
			}
		})
	}
}
