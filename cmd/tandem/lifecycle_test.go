package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const reloadConf = `
pid_file {{DIR}}/tandem.pid;
shutdown_timeout 10s;
site _ {
    listen 127.0.0.1:0;
    root {{DIR}}/ROOT;
}
`

// A reload under steady load swaps the site without failing a request,
// and an invalid config on reload is reported while the old one keeps
// serving.
func TestReload_UnderLoad_LosesNoRequest(t *testing.T) {
	in := startTandem(t, strings.ReplaceAll(reloadConf, "ROOT", "v1"), func(dir string) {
		writeFile(t, filepath.Join(dir, "v1/index.html"), "v1")
		writeFile(t, filepath.Join(dir, "v2/index.html"), "v2")
	})
	url := in.url("/")
	const workers, perWorker = 4, 1500
	ld := startLoad(url, workers, perWorker, func(status int, body string) bool {
		return status == 200 && (body == "v1" || body == "v2")
	})
	// Alternate configs while the load runs, including a broken one.
	for i := 0; i < 6; i++ {
		root := []string{"v2", "v1"}[i%2]
		cfg := strings.ReplaceAll(strings.ReplaceAll(reloadConf, "ROOT", root), "{{DIR}}", in.dir)
		if i == 3 {
			cfg = "site _ { listen 127.0.0.1:0; rot /nowhere; }\n"
		}
		writeFile(t, in.conf, cfg)
		if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		in.waitLogCount("reloading", i+1, 10*time.Second)
		// Let the load run across each config before the next swap.
		ld.waitOK(t, 200, 10*time.Second)
	}
	writeFile(t, in.conf, strings.ReplaceAll(strings.ReplaceAll(reloadConf, "ROOT", "v2"), "{{DIR}}", in.dir))
	_ = in.cmd.Process.Signal(syscall.SIGHUP)
	ld.wg.Wait()
	if ld.failed.Load() != 0 || ld.ok.Load() < workers*perWorker/2 {
		t.Fatalf("reloads under load: %s", ld.report())
	}
	in.waitLog(`unknown directive \"rot\"`, 5*time.Second)
	waitBody(t, url, "v2", 10*time.Second)
	t.Logf("%s, across 7 reloads", ld.report())
}

func (in *instance) waitLogCount(s string, n int, d time.Duration) {
	in.t.Helper()
	deadline := time.Now().Add(d)
	for in.countLog(s) < n {
		if time.Now().After(deadline) {
			in.t.Fatalf("log has %d %q lines, want %d:\n%s", in.countLog(s), s, n, in.logText())
		}
		select {
		case <-in.lines:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitBody polls url until it serves want, or fails at the deadline.
func waitBody(t *testing.T, url, want string, d time.Duration) {
	t.Helper()
	c := client()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		r, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			last = fmt.Sprintf("%d %q", r.StatusCode, b)
			if string(b) == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never served %q; last %s", url, want, last)
}

// SIGTERM lets a download in flight finish, then exits 0.
func TestStop_DrainsInFlightDownload(t *testing.T) {
	const size = 32 << 20
	in := startTandem(t, strings.ReplaceAll(reloadConf, "ROOT", "www"), func(dir string) {
		writeFile(t, filepath.Join(dir, "www/big.bin"), strings.Repeat("x", size))
	})
	resp, err := client().Get(in.url("/big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read a little so the response is surely in flight, then stop.
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	in.waitLog("draining", 5*time.Second)
	// New connections are refused once draining started.
	waitRefused(t, in.addrs[0], 5*time.Second)
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size-1024 {
		t.Fatalf("in-flight download cut: read %d more bytes, err %v", n, err)
	}
	select {
	case <-in.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after the last request finished")
	}
	if code := in.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if _, err := os.Stat(filepath.Join(in.dir, "tandem.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

func waitRefused(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections while draining", addr)
}

// `tandem reload` and `tandem stop` find the instance through pid_file.
func TestControlCommands_UsePIDFile(t *testing.T) {
	in := startTandem(t, strings.ReplaceAll(reloadConf, "ROOT", "v1"), func(dir string) {
		writeFile(t, filepath.Join(dir, "v1/index.html"), "v1")
		writeFile(t, filepath.Join(dir, "v2/index.html"), "v2")
	})
	writeFile(t, in.conf, strings.ReplaceAll(strings.ReplaceAll(reloadConf, "ROOT", "v2"), "{{DIR}}", in.dir))
	out, err := exec.Command(binPath, "reload", "-c", in.conf).CombinedOutput()
	if err != nil {
		t.Fatalf("tandem reload: %v\n%s", err, out)
	}
	waitBody(t, in.url("/"), "v2", 10*time.Second)
	out, err = exec.Command(binPath, "stop", "-c", in.conf).CombinedOutput()
	if err != nil {
		t.Fatalf("tandem stop: %v\n%s", err, out)
	}
	select {
	case <-in.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("tandem stop returned but the process runs on")
	}
	out, err = exec.Command(binPath, "stop", "-c", in.conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no running instance") {
		t.Fatalf("stop with nothing running: err %v, output %q", err, out)
	}
}

// A pid file left by a tandem that was killed, whose pid now belongs to
// another program: stop and reload refuse to signal it (it is not tandem,
// since no tandem holds the file's lock), and run starts instead of
// claiming tandem is already running.
func TestControlCommands_StalePIDReused(t *testing.T) {
	stranger := exec.Command("/bin/sleep", "60")
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stranger.Process.Kill(); _ = stranger.Wait() }()
	dir := t.TempDir()
	pidPath := filepath.Join(dir, "tandem.pid")
	writeFile(t, pidPath, strconv.Itoa(stranger.Process.Pid)+"\n")
	for _, cmd := range []string{"stop", "reload"} {
		out, err := exec.Command(binPath, cmd, "--pid", pidPath).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "is not tandem") {
			t.Fatalf("tandem %s with a reused pid: err %v, output %q", cmd, err, out)
		}
	}
	if err := stranger.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the other program was signalled: %v", err)
	}
	in := startArgs(t, dir, "", "run", "--root", dir, "--listen", "127.0.0.1:0", "--pid", pidPath)
	b, err := os.ReadFile(pidPath)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(in.cmd.Process.Pid) {
		t.Fatalf("pid file holds %q (%v), want tandem's pid %d", b, err, in.cmd.Process.Pid)
	}
	out, err := exec.Command(binPath, "stop", "--pid", pidPath).CombinedOutput()
	if err != nil {
		t.Fatalf("tandem stop of the new instance: %v\n%s", err, out)
	}
	select {
	case <-in.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("tandem stop returned but the process runs on")
	}
}

// SIGUSR1 reopens the access log so logrotate can move it away.
func TestSIGUSR1_ReopensAccessLog(t *testing.T) {
	cfg := strings.ReplaceAll(reloadConf, "ROOT", "www") + "access_log {{DIR}}/access.log combined;\n"
	in := startTandem(t, cfg, func(dir string) { writeFile(t, filepath.Join(dir, "www/a.txt"), "a") })
	c := client()
	do(t, c, "GET", in.url("/a.txt"), map[string]string{"User-Agent": `evil"agent`})
	logPath := filepath.Join(in.dir, "access.log")
	line := waitFileContains(t, logPath, "GET /a.txt HTTP/1.1", 5*time.Second)
	if !strings.Contains(line, `"GET /a.txt HTTP/1.1" 200 1 "-" "evil\x22agent"`) {
		t.Errorf("combined line %q not in nginx format with escaped quote", line)
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	_ = in.cmd.Process.Signal(syscall.SIGUSR1)
	in.waitLog("log files reopened", 5*time.Second)
	do(t, c, "GET", in.url("/a.txt?after"), nil)
	waitFileContains(t, logPath, "GET /a.txt?after", 5*time.Second)
}

func waitFileContains(t *testing.T, path, s string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%s never contained %q; has:\n%s", path, s, b)
	return ""
}

// `tandem run --root DIR --listen ADDR` serves a folder without a config.
func TestQuickStart_ServesFolder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "index.html"), "hello")
	in := startArgs(t, dir, "", "run", "--root", dir, "--listen", "127.0.0.1:0", "--pid", filepath.Join(dir, "t.pid"))
	r := do(t, client(), "GET", in.url("/"), nil)
	if r.status != 200 || r.body != "hello" {
		t.Fatalf("GET / = %d %q", r.status, r.body)
	}
}

// Host picks the site: exact names, wildcards, then the listener default.
func TestVirtualHosts_ChosenByHost(t *testing.T) {
	cfg := `
site a.test {
    listen 127.0.0.1:0;
    return 200 "a";
}
site *.b.test {
    listen 127.0.0.1:0;
    return 200 "wild-b";
}
site fallback {
    listen 127.0.0.1:0 default;
    return 200 "default";
}
`
	in := startTandem(t, cfg, nil)
	c := client()
	for host, want := range map[string]string{
		"a.test": "a", "A.TEST:80": "a", "x.b.test": "wild-b", "deep.x.b.test": "wild-b",
		"b.test": "default", "other": "default", "": "default",
	} {
		r := do(t, c, "GET", in.url("/"), map[string]string{"Host": host})
		if r.body != want {
			t.Errorf("Host %q served %q, want %q", host, r.body, want)
		}
	}
}

// Limits answer with the right status instead of hanging or crashing.
func TestLimits(t *testing.T) {
	cfg := `
header_timeout 1s;
max_header_size 4k;
site _ {
    listen 127.0.0.1:0;
    client_max_body_size 1k;
    return 200 "ok";
}
`
	in := startTandem(t, cfg, nil)
	c := client()
	t.Run("body too large is 413", func(t *testing.T) {
		req, _ := http.NewRequest("POST", in.url("/"), bytes.NewReader(make([]byte, 4096)))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	})
	t.Run("headers too large is 431", func(t *testing.T) {
		r := do(t, c, "GET", in.url("/"), map[string]string{"X-Big": strings.Repeat("a", 8192)})
		if r.status != 431 {
			t.Fatalf("status %d, want 431", r.status)
		}
	})
	t.Run("slowloris is cut at header_timeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", in.addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(conn)
		if err != nil {
			t.Fatalf("connection not closed by the server: %v", err)
		}
		if waited := time.Since(start); waited > 5*time.Second {
			t.Fatalf("server waited %v for headers; header_timeout is 1s", waited)
		}
	})
}

// The connection-level limits through the binary: idle_timeout closes an
// idle keep-alive connection, body_timeout cuts a stalled request body,
// write_timeout a client that stops reading, and max_connections holds
// connections past the limit until one closes.
func TestLimits_TimeoutsAndConnections(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d", n)
	}))
	defer up.Close()
	const big = 64 << 20
	in := startTandem(t, `
idle_timeout 1s;
body_timeout 1s;
write_timeout 2s;
max_connections 2;
site _ {
    listen 127.0.0.1:0;
    root {{DIR}}/www;
    location /up/ { proxy `+up.URL+`; }
}
`, func(dir string) { writeFile(t, filepath.Join(dir, "www/big.bin"), strings.Repeat("x", big)) })

	dial := func(t *testing.T) net.Conn {
		conn, err := net.Dial("tcp", in.addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// readUntilClosed reads conn until the server closes it, for at most d.
	readUntilClosed := func(conn net.Conn, d time.Duration) (string, time.Duration, error) {
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(d))
		b, err := io.ReadAll(conn)
		return string(b), time.Since(start), err
	}
	t.Run("idle_timeout closes an idle keep-alive connection", func(t *testing.T) {
		conn := dial(t)
		fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n")
		out, took, err := readUntilClosed(conn, 10*time.Second)
		if err != nil || !strings.HasPrefix(out, "HTTP/1.1 206") {
			t.Fatalf("no close within 10s after an idle keep-alive (err %v): %.60q", err, out)
		}
		t.Logf("closed %v after the response (idle_timeout 1s)", took.Round(10*time.Millisecond))
	})
	t.Run("body_timeout cuts a stalled body", func(t *testing.T) {
		conn := dial(t)
		fmt.Fprintf(conn, "POST /up/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
		out, took, err := readUntilClosed(conn, 10*time.Second)
		if err != nil || !strings.HasPrefix(out, "HTTP/1.1 408") {
			t.Fatalf("stalled body: %.80q (err %v), want a 408 and a close within 10s", out, err)
		}
		t.Logf("408 and close %v after the body stalled (body_timeout 1s)", took.Round(10*time.Millisecond))
	})
	t.Run("body_timeout spares a slow body that keeps moving", func(t *testing.T) {
		conn := dial(t)
		// 10 bytes, one every 150ms: 1.5s in all, longer than body_timeout
		// but never a pause as long as it (and within write_timeout,
		// which counts from the end of the headers).
		fmt.Fprintf(conn, "POST /up/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n")
		for i := range 10 {
			time.Sleep(150 * time.Millisecond) // the pace of the upload is what is under test
			if _, err := conn.Write([]byte{'0' + byte(i)}); err != nil {
				t.Fatalf("byte %d: %v", i, err)
			}
		}
		out, _, err := readUntilClosed(conn, 10*time.Second)
		if err != nil || !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.HasSuffix(out, "got 10") {
			t.Fatalf("slow but steady body: %.120q (err %v), want 200 and the 10 bytes upstream\n%s", out, err, in.logText())
		}
	})
	t.Run("write_timeout cuts a client that stops reading", func(t *testing.T) {
		conn := dial(t)
		fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
		// The client stalls past write_timeout: the stall is what is
		// under test, not a wait for the server.
		time.Sleep(3 * time.Second)
		// The socket buffers hold a few MiB of the 64 MiB; after them the
		// server's close must follow.
		out, took, err := readUntilClosed(conn, 20*time.Second)
		if err != nil || len(out) >= big {
			t.Fatalf("a client that stalled 3s got %d of %d bytes, then %v; write_timeout 2s should have closed it", len(out), big, err)
		}
		t.Logf("got %d of %d bytes, then the close (read for %v)", len(out), big, took.Round(time.Millisecond))
	})
	t.Run("max_connections holds the third connection", func(t *testing.T) {
		var open []net.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for range 2 {
			c, err := net.Dial("tcp", in.addrs[0])
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n")
			br := bufio.NewReader(c)
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 206 {
				t.Fatalf("connection %d: %v", len(open)+1, err)
			}
			open = append(open, c)
		}
		third := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
		if _, err := third.Get(in.url("/big.bin")); err == nil {
			t.Fatal("a third connection was served while max_connections 2 were open")
		}
		open[0].Close()
		open = open[1:]
		r := do(t, client(), "GET", in.url("/up/"), nil)
		if r.status != 200 {
			t.Fatalf("after a connection closed: %d", r.status)
		}
	})
}
