package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// binPath is the tandem binary built once for the integration tests, so
// they exercise exactly what an operator runs.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tandem-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "tandem")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tandem:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is a running tandem process.
type instance struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string
	conf   string
	mu     sync.Mutex
	log    bytes.Buffer // stderr so far; guarded by mu
	lines  chan string
	exited chan struct{}
	addrs  []string
}

// startTandem writes config (with {{DIR}} replaced by a temp dir that also
// holds the config) and runs `tandem run -c`. Listen addresses should use
// port 0; the real ones are read from the startup log line.
func startTandem(t *testing.T, config string, setup func(dir string)) *instance {
	t.Helper()
	dir := t.TempDir()
	if setup != nil {
		setup(dir)
	}
	path := filepath.Join(dir, "tandem.conf")
	writeFile(t, path, strings.ReplaceAll(config, "{{DIR}}", dir))
	args := []string{"run", "-c", path}
	if !strings.Contains(config, "pid_file") {
		// Never the default pid file: an instance already running on the
		// machine would make the test fail.
		args = append(args, "--pid", filepath.Join(dir, "tandem.pid"))
	}
	return startArgs(t, dir, path, args...)
}

func startArgs(t *testing.T, dir, confPath string, args ...string) *instance {
	t.Helper()
	in := &instance{t: t, dir: dir, conf: confPath, lines: make(chan string, 1024), exited: make(chan struct{})}
	in.cmd = exec.Command(binPath, args...)
	in.cmd.Dir = dir
	stderr, err := in.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go in.readLog(stderr)
	t.Cleanup(func() {
		_ = in.cmd.Process.Signal(syscall.SIGKILL)
		<-in.exited
		if t.Failed() {
			t.Logf("tandem log:\n%s", in.logText())
		}
	})
	line := in.waitLog("tandem started", 20*time.Second)
	in.addrs = parseAddrs(t, line)
	return in
}

func (in *instance) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		in.mu.Lock()
		in.log.WriteString(sc.Text() + "\n")
		in.mu.Unlock()
		select {
		case in.lines <- sc.Text():
		default:
		}
	}
	_ = in.cmd.Wait()
	close(in.exited)
}

func (in *instance) logText() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.log.String()
}

// waitLog waits until the log holds a line containing s, or fails.
func (in *instance) waitLog(s string, d time.Duration) string {
	in.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(in.logText(), "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		select {
		case <-in.exited:
			in.t.Fatalf("tandem exited before logging %q:\n%s", s, in.logText())
		case <-in.lines:
		case <-time.After(50 * time.Millisecond):
		}
	}
	in.t.Fatalf("no log line %q within %v:\n%s", s, d, in.logText())
	return ""
}

// countLog counts log lines containing s.
func (in *instance) countLog(s string) int {
	return strings.Count(in.logText(), s)
}

func parseAddrs(t *testing.T, line string) []string {
	t.Helper()
	i := strings.IndexByte(line, '{')
	if i < 0 {
		t.Fatalf("startup line has no fields: %q", line)
	}
	var f struct {
		Addrs []string `json:"addrs"`
	}
	if err := json.Unmarshal([]byte(line[i:]), &f); err != nil {
		t.Fatalf("startup line %q: %v", line, err)
	}
	return f.Addrs
}

// url is http://ADDR+path on the instance's first address.
func (in *instance) url(path string) string {
	return "http://" + in.addrs[0] + path
}

// signal sends sig and, for SIGTERM, waits for a clean exit.
func (in *instance) stop(d time.Duration) int {
	in.t.Helper()
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(d):
		in.t.Fatalf("tandem did not exit within %v after SIGTERM", d)
	}
	return in.cmd.ProcessState.ExitCode()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// client is a keep-alive client that never follows redirects or
// transparently decompresses, so tests see exactly what tandem sent.
func client() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type result struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
