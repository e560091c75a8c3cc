package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/static"
)

// startCGI serves config, with {{DIR}} replaced by a temp dir, on a real
// listener (so REMOTE_ADDR, SERVER_PORT and bodies are real). It returns
// the address, the dir and the error log.
func startCGI(t *testing.T, config string) (addr, dir string, logs *observer.ObservedLogs) {
	t.Helper()
	dir = t.TempDir()
	for _, d := range []string{"www/cgi-bin", "bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(strings.ReplaceAll(config, "{{DIR}}", dir)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	core, logs := observer.New(zap.DebugLevel)
	cache := static.NewCache(static.CacheConfig{})
	t.Cleanup(func() { cache.Close() })
	s, err := New(cfg, Options{FileCache: cache, Log: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	return s.Addrs()[0], dir, logs
}

// cgiSite is a site whose /cgi-bin/ runs scripts from {{DIR}}/www/cgi-bin.
const cgiSite = `
site example.test {
    listen 127.0.0.1:0;
    root {{DIR}}/www;
    location /cgi-bin/ { cgi; cgi_env TANDEM_EXTRA extra-value; }
}`

// writeFile writes body to dir/name with mode, creating directories.
func writeFile(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// pyEnvScript prints its environment and the body it read as JSON.
const pyEnvScript = `#!/usr/bin/python3
import json, os, sys
n = int(os.environ.get("CONTENT_LENGTH") or 0)
body = sys.stdin.buffer.read(n).decode() if n else ""
sys.stdout.write("Content-Type: application/json\r\n\r\n")
sys.stdout.write(json.dumps({"env": dict(os.environ), "body": body}))
`

// shEchoScript echoes the request's method, length and body.
const shEchoScript = `#!/bin/sh
printf 'Content-Type: text/plain\r\nX-Script: sh\r\n\r\n'
printf '%s %s %s|' "$REQUEST_METHOD" "$CONTENT_LENGTH" "$CONTENT_TYPE"
head -c "${CONTENT_LENGTH:-0}"
`

type cgiResult struct {
	Env  map[string]string
	Body string
}

// do sends one request and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func newReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// runEnv requests the python env script and decodes its answer.
func runEnv(t *testing.T, req *http.Request) cgiResult {
	t.Helper()
	resp, body := do(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("env script: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var res cgiResult
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("env script output %q: %v", body, err)
	}
	return res
}

func needPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
}

// The script gets the RFC 3875 variables: SCRIPT_NAME is the script's URL
// path and PATH_INFO the rest, the first regular file along the path
// being the script (as Apache does); cgi_env adds variables; nothing of
// tandem's own environment leaks.
func TestCGI_EnvironmentPerRFC3875(t *testing.T) {
	needPython(t)
	t.Setenv("TANDEM_TEST_SECRET", "leaked")
	addr, dir, _ := startCGI(t, cgiSite)
	script := writeFile(t, dir, "www/cgi-bin/env.py", pyEnvScript, 0o755)
	realScript, _ := filepath.EvalSymlinks(script)

	req := newReq(t, "GET", "http://"+addr+"/cgi-bin/env.py/extra/path?a=1&b=%20x", nil)
	req.Host = "example.test"
	req.Header.Set("X-Custom", "one")
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	env := runEnv(t, req).Env

	_, port, _ := net.SplitHostPort(addr)
	want := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   "tandem",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"SERVER_NAME":       "example.test",
		"SERVER_PORT":       port,
		"SERVER_ADDR":       "127.0.0.1",
		"REQUEST_METHOD":    "GET",
		"REQUEST_URI":       "/cgi-bin/env.py/extra/path?a=1&b=%20x",
		"REQUEST_SCHEME":    "http",
		"QUERY_STRING":      "a=1&b=%20x",
		"SCRIPT_NAME":       "/cgi-bin/env.py",
		"SCRIPT_FILENAME":   realScript,
		"PATH_INFO":         "/extra/path",
		"PATH_TRANSLATED":   filepath.Join(dir, "www") + "/extra/path",
		"DOCUMENT_ROOT":     filepath.Join(dir, "www"),
		"REMOTE_ADDR":       "127.0.0.1",
		"HTTP_HOST":         "example.test",
		"HTTP_X_CUSTOM":     "one",
		"HTTP_COOKIE":       "a=1; b=2",
		"PATH":              "/usr/local/bin:/usr/bin:/bin",
		"TANDEM_EXTRA":      "extra-value",
		"REDIRECT_STATUS":   "200",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if p, err := strconv.Atoi(env["REMOTE_PORT"]); err != nil || p == 0 {
		t.Errorf("REMOTE_PORT = %q, want the client's port", env["REMOTE_PORT"])
	}
	for _, k := range []string{"CONTENT_LENGTH", "CONTENT_TYPE", "HTTPS", "TANDEM_TEST_SECRET", "HOME"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %q is set, want it absent", k, v)
		}
	}

	// Without extra path there is no PATH_INFO (nor PATH_TRANSLATED).
	env = runEnv(t, newReq(t, "GET", "http://"+addr+"/cgi-bin/env.py", nil)).Env
	if _, ok := env["PATH_INFO"]; ok || env["SCRIPT_NAME"] != "/cgi-bin/env.py" || env["QUERY_STRING"] != "" {
		t.Errorf("no path info: PATH_INFO %q SCRIPT_NAME %q QUERY_STRING %q", env["PATH_INFO"], env["SCRIPT_NAME"], env["QUERY_STRING"])
	}
}

// Under an alias, SCRIPT_NAME is still the URL path and DOCUMENT_ROOT the
// alias directory (nginx's $document_root).
func TestCGI_Alias(t *testing.T) {
	needPython(t)
	addr, dir, _ := startCGI(t, `
site _ {
    listen 127.0.0.1:0;
    location /scripts/ { alias {{DIR}}/bin; cgi; }
}`)
	writeFile(t, dir, "bin/sub/env.py", pyEnvScript, 0o755)
	env := runEnv(t, newReq(t, "GET", "http://"+addr+"/scripts/sub/env.py/x", nil)).Env
	if env["SCRIPT_NAME"] != "/scripts/sub/env.py" || env["PATH_INFO"] != "/x" || env["DOCUMENT_ROOT"] != filepath.Join(dir, "bin") {
		t.Errorf("SCRIPT_NAME %q PATH_INFO %q DOCUMENT_ROOT %q", env["SCRIPT_NAME"], env["PATH_INFO"], env["DOCUMENT_ROOT"])
	}
}

// A POST body reaches the script on stdin with CONTENT_LENGTH and
// CONTENT_TYPE; a chunked body (no length) is read first, so the script
// still gets CONTENT_LENGTH.
func TestCGI_PostBodyEchoed(t *testing.T) {
	addr, dir, _ := startCGI(t, cgiSite)
	writeFile(t, dir, "www/cgi-bin/echo.sh", shEchoScript, 0o755)

	payload := "name=tandem&msg=" + strings.Repeat("x", 100<<10)
	req := newReq(t, "POST", "http://"+addr+"/cgi-bin/echo.sh", strings.NewReader(payload))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := do(t, req)
	want := fmt.Sprintf("POST %d application/x-www-form-urlencoded|%s", len(payload), payload)
	if resp.StatusCode != 200 || body != want || resp.Header.Get("X-Script") != "sh" {
		t.Errorf("POST: %d %q (%d bytes), want 200 and %d bytes echoed", resp.StatusCode, truncate([]byte(body), 60), len(body), len(want))
	}

	// io.MultiReader hides the length: the client sends it chunked.
	req = newReq(t, "PUT", "http://"+addr+"/cgi-bin/echo.sh", io.MultiReader(strings.NewReader("chunked body")))
	resp, body = do(t, req)
	if resp.StatusCode != 200 || body != "PUT 12 |chunked body" {
		t.Errorf("chunked PUT: %d %q", resp.StatusCode, body)
	}
}

// Status and Location from the script set the response: Location alone
// means 302, Status wins, other headers pass through, hop-by-hop ones do
// not.
func TestCGI_StatusAndLocation(t *testing.T) {
	addr, dir, _ := startCGI(t, cgiSite)
	for _, c := range []struct {
		name, head, location string
		status               int
	}{
		{"status302", `Status: 302 Found\r\nLocation: https://example.com/next\r\n`, "https://example.com/next", 302},
		{"locationOnly", `Location: /elsewhere?x=1\r\n`, "/elsewhere?x=1", 302},
		{"created", `Status: 201\r\nContent-Type: text/plain\r\nX-Id: 7\r\nConnection: close, X-Id\r\n`, "", 201},
		{"lfOnly", `Status: 418 Teapot\nContent-Type: text/plain\n`, "", 418},
	} {
		writeFile(t, dir, "www/cgi-bin/"+c.name, "#!/bin/sh\nprintf '"+c.head+"\\r\\n'\necho body\n", 0o755)
		resp, body := do(t, newReq(t, "GET", "http://"+addr+"/cgi-bin/"+c.name, nil))
		if resp.StatusCode != c.status || resp.Header.Get("Location") != c.location {
			t.Errorf("%s: %d Location %q, want %d %q", c.name, resp.StatusCode, resp.Header.Get("Location"), c.status, c.location)
		}
		if c.name == "created" && (resp.Header.Get("X-Id") != "7" || body != "body\n" || resp.Close) {
			t.Errorf("created: X-Id %q body %q close %v: headers pass, Connection does not", resp.Header.Get("X-Id"), body, resp.Close)
		}
	}
}

// Only executable regular files run: a plain file and a directory get
// 403, a missing script 404 (through error_page, like any 404), and a
// non-executable file is never run.
func TestCGI_NotExecutableIsForbidden(t *testing.T) {
	addr, dir, _ := startCGI(t, `
site _ {
    listen 127.0.0.1:0;
    root {{DIR}}/www;
    error_page 404 /nf.txt;
    location /cgi-bin/ { cgi; }
}`)
	marker := filepath.Join(dir, "ran")
	writeFile(t, dir, "www/cgi-bin/plain.sh", "#!/bin/sh\ntouch "+marker+"\n", 0o644)
	writeFile(t, dir, "www/cgi-bin/sub/x.txt", "x", 0o644)
	writeFile(t, dir, "www/nf.txt", "custom not found", 0o644)
	for path, want := range map[string]int{
		"/cgi-bin/plain.sh":       403,
		"/cgi-bin/plain.sh/extra": 403,
		"/cgi-bin/sub/":           403,
		"/cgi-bin/sub":            403,
		"/cgi-bin/":               403,
		"/cgi-bin/missing.sh":     404,
		"/cgi-bin/missing/x.sh":   404,
	} {
		resp, body := do(t, newReq(t, "GET", "http://"+addr+path, nil))
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
		if want == 404 && body != "custom not found" {
			t.Errorf("%s: 404 body %q, want the error_page", path, body)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a non-executable file was run")
	}
}

// rawGet sends path exactly as written (no client-side cleaning) and
// returns the status.
func rawGet(t *testing.T, addr, path string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Nothing outside the root ever runs: "..", encoded "..", encoded
// slashes, symlinks to a file or a directory outside, absolute symlinks
// and hidden files are refused as static serving refuses them. A symlink
// that stays inside the root works.
func TestCGI_TraversalNeverRunsOutsideRoot(t *testing.T) {
	addr, dir, _ := startCGI(t, cgiSite)
	marker := filepath.Join(dir, "ran-outside")
	evil := "#!/bin/sh\ntouch " + marker + "\nprintf 'Content-Type: text/plain\\r\\n\\r\\nescaped'\n"
	writeFile(t, dir, "outside.sh", evil, 0o755)
	writeFile(t, dir, "www/cgi-bin/.hidden.sh", evil, 0o755)
	writeFile(t, dir, "www/cgi-bin/ok.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n", 0o755)
	links := map[string]string{
		"www/cgi-bin/rel.sh":    "../../outside.sh",
		"www/cgi-bin/abs.sh":    filepath.Join(dir, "outside.sh"),
		"www/cgi-bin/outdir":    "../..",
		"www/cgi-bin/inside.sh": "ok.sh",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{
		"/cgi-bin/../../outside.sh",
		"/cgi-bin/%2e%2e/%2e%2e/outside.sh",
		"/cgi-bin/%2E%2E%2F%2E%2E%2Foutside.sh",
		"/cgi-bin/..%2f..%2foutside.sh",
		"/cgi-bin/%252e%252e/%252e%252e/outside.sh",
		"/cgi-bin/rel.sh",
		"/cgi-bin/abs.sh",
		"/cgi-bin/outdir/outside.sh",
		"/cgi-bin/.hidden.sh",
		"/cgi-bin/..\\..\\outside.sh",
	} {
		if got := rawGet(t, addr, path); got != 404 {
			t.Errorf("%s: %d, want 404", path, got)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a script outside the root ran")
	}
	if got := rawGet(t, addr, "/cgi-bin/inside.sh"); got != 200 {
		t.Errorf("symlink inside the root: %d, want 200", got)
	}
}

// Headers whose names hold "_" never become HTTP_* variables, so
// X_Forwarded_For cannot pose as X-Forwarded-For; the Proxy header never
// becomes HTTP_PROXY (httpoxy).
func TestCGI_SmugglingHeadersNotPassed(t *testing.T) {
	needPython(t)
	addr, dir, _ := startCGI(t, cgiSite)
	writeFile(t, dir, "www/cgi-bin/env.py", pyEnvScript, 0o755)
	req := newReq(t, "GET", "http://"+addr+"/cgi-bin/env.py", nil)
	req.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Proxy", "http://evil.example:3128")
	req.Header["X_Only_Underscore"] = []string{"1"}
	env := runEnv(t, req).Env
	if got := env["HTTP_X_FORWARDED_FOR"]; got != "203.0.113.9" {
		t.Errorf("HTTP_X_FORWARDED_FOR = %q, want only the hyphenated header's value", got)
	}
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTP_X_ONLY_UNDERSCORE"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %q, want it absent", k, v)
		}
	}
}

// sleepScript starts a child and waits for it without printing anything,
// after recording both pids (atomically, via rename) in $PIDS.
const sleepScript = "#!/bin/sh\nsleep 60 &\necho \"$$ $!\" > \"$PIDS.tmp\"\nmv \"$PIDS.tmp\" \"$PIDS\"\nwait\n"

// processGone reports whether pid has exited (a zombie counts: it no
// longer runs, and no init may be reaping in a container).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name's closing parenthesis.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// cgi_timeout: a script that prints no head in time is killed, together
// with the children it started, and the client gets 504.
func TestCGI_TimeoutKillsScript(t *testing.T) {
	addr, dir, logs := startCGI(t, `
site _ {
    listen 127.0.0.1:0;
    root {{DIR}}/www;
    location /cgi-bin/ { cgi; cgi_timeout 1s; cgi_env PIDS {{DIR}}/pids; }
}`)
	writeFile(t, dir, "www/cgi-bin/sleep.sh", sleepScript, 0o755)
	start := time.Now()
	resp, _ := do(t, newReq(t, "GET", "http://"+addr+"/cgi-bin/sleep.sh", nil))
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("got %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("answered after %v, before cgi_timeout", d)
	}
	waitGone(t, filepath.Join(dir, "pids"))
	if logs.FilterMessage("script sent no response head in time; killed").Len() != 1 {
		t.Errorf("the timeout is not logged: %v", logs.All())
	}
}

// waitGone polls until every pid listed in file has exited.
func waitGone(t *testing.T, file string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the script did not record its pids: %v", err)
	}
	fields := strings.Fields(string(raw))
	if len(fields) == 0 {
		t.Fatalf("pids file %q is empty", raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, f := range fields {
		pid, _ := strconv.Atoi(f)
		for !processGone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d (of script %q) still runs", pid, raw)
			}
			time.Sleep(10 * time.Millisecond) // polling, not a race fix
		}
	}
}

// A client that leaves before the head takes its script with it: the
// process group is killed at once, not after cgi_timeout.
func TestCGI_ClientGoneKillsScript(t *testing.T) {
	addr, dir, _ := startCGI(t, `
site _ {
    listen 127.0.0.1:0;
    root {{DIR}}/www;
    location /cgi-bin/ { cgi; cgi_timeout 1h; cgi_env PIDS {{DIR}}/pids; }
}`)
	pids := filepath.Join(dir, "pids")
	writeFile(t, dir, "www/cgi-bin/sleep.sh", sleepScript, 0o755)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/cgi-bin/sleep.sh", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(pids); err != nil; _, err = os.Stat(pids) {
		if time.Now().After(deadline) {
			t.Fatal("the script never started")
		}
		time.Sleep(10 * time.Millisecond) // polling for the script to start
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the request completed; want it cancelled")
	}
	waitGone(t, pids)
}

// A script that breaks the protocol gets 502: no output at all, output
// without the blank line that ends the head, a line that is no header, a
// bad Status, a head without Content-Type; stderr goes to the error log.
func TestCGI_BadScriptOutputIs502(t *testing.T) {
	addr, dir, logs := startCGI(t, cgiSite)
	for name, body := range map[string]string{
		"silent":      "echo boom >&2\nexit 0",
		"crash":       "exit 3",
		"noblank":     "printf 'Content-Type: text/plain\\r\\n'",
		"notheader":   "echo 'hello world'; echo; echo body",
		"badstatus":   "printf 'Status: abc\\r\\nContent-Type: text/plain\\r\\n\\r\\n'",
		"nostatus1xx": "printf 'Status: 100\\r\\nContent-Type: text/plain\\r\\n\\r\\n'",
		"notype":      "printf 'X-A: 1\\r\\n\\r\\nbody'",
	} {
		writeFile(t, dir, "www/cgi-bin/"+name, "#!/bin/sh\n"+body+"\n", 0o755)
		if resp, _ := do(t, newReq(t, "GET", "http://"+addr+"/cgi-bin/"+name, nil)); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: %d, want 502", name, resp.StatusCode)
		}
	}
	if logs.FilterField(zap.ByteString("line", []byte("boom"))).Len() != 1 {
		t.Errorf("stderr line not logged once: %v", logs.FilterMessage("script stderr").All())
	}
}

// The script's output streams: the head and first bytes reach the client
// before the script has finished.
func TestCGI_OutputStreams(t *testing.T) {
	addr, dir, _ := startCGI(t, cgiSite)
	fifo := filepath.Join(dir, "go-on")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The script prints its first part, then waits until the test writes
	// to the fifo, which it does only after reading that first part.
	writeFile(t, dir, "www/cgi-bin/stream.sh",
		"#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfirst\\n'\nread x < "+fifo+"\necho second\n", 0o755)
	resp, err := http.Get("http://" + addr + "/cgi-bin/stream.sh")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first part: %q %v", line, err)
	}
	if err := os.WriteFile(fifo, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "second\n" {
		t.Errorf("rest: %q %v", rest, err)
	}
}

// cgiHeaderVar pins which request headers become variables and how.
func TestCGIHeaderVar(t *testing.T) {
	for name, want := range map[string]string{
		"X-Forwarded-For": "HTTP_X_FORWARDED_FOR",
		"user-agent":      "HTTP_USER_AGENT",
		"Authorization":   "HTTP_AUTHORIZATION",
		"X_Forwarded_For": "",
		"Proxy":           "",
		"proxy":           "",
		"Content-Type":    "",
		"Content-Length":  "",
		"X.Dotted":        "",
		"X=Eq":            "",
		"":                "",
	} {
		got, ok := cgiHeaderVar(name)
		if got != want || ok != (want != "") {
			t.Errorf("cgiHeaderVar(%q) = %q %v, want %q", name, got, ok, want)
		}
	}
}

// A script flooding stderr puts at most cgiMaxStderr of it in the error
// log, then one line with what was left out; the response is unaffected.
func TestCGI_StderrFloodIsCapped(t *testing.T) {
	addr, dir, logs := startCGI(t, cgiSite)
	// 1000 lines of 1000 bytes: ~1 MB, far past the cap.
	writeFile(t, dir, "www/cgi-bin/flood", "#!/bin/sh\n"+
		"i=0; line=$(head -c 1000 /dev/zero | tr '\\0' x)\n"+
		"while [ $i -lt 1000 ]; do echo \"$line\" >&2; i=$((i+1)); done\n"+
		"printf 'Content-Type: text/plain\\r\\n\\r\\nok'\n", 0o755)
	resp, body := do(t, newReq(t, "GET", "http://"+addr+"/cgi-bin/flood", nil))
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessage("script stderr over 64 KiB; the rest was not logged").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no line saying stderr was cut")
		}
		time.Sleep(5 * time.Millisecond)
	}
	logged := 0
	for _, e := range logs.FilterMessage("script stderr").All() {
		logged += len(e.ContextMap()["line"].(string))
	}
	if logged > cgiMaxStderr+cgiMaxStderrLine {
		t.Errorf("%d bytes of stderr logged, cap %d", logged, cgiMaxStderr)
	}
	f := logs.FilterMessage("script stderr over 64 KiB; the rest was not logged").All()[0].ContextMap()
	if d := f["bytes_dropped"].(int64); d < 900_000 {
		t.Errorf("bytes_dropped %d, want about 1000000 - 64 KiB", d)
	}
}
