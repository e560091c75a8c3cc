package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallTmpfs mounts a 4 MiB tmpfs for the test, or skips where mounting
// is not allowed (not root, or a container without the capability).
func smallTmpfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestApp_FullDisk: with the runtime dir on a full file system, an upload
// larger than what fits gets 500 (tandem's trouble, not the client's; it
// was 400) with "no space left on device" in the error log, and the app
// keeps serving requests that fit, uploads included, on the same workers;
// a response too big to buffer is whole or a clean 502.
func TestApp_FullDisk(t *testing.T) {
	small := smallTmpfs(t)
	t.Setenv("TMPDIR", small)
	in := startTandem(t, `
app echo {
    wsgi echoapp:application;
    chdir {{DIR}};
    workers 1;
}
site _ {
    listen 127.0.0.1:0;
    client_max_body_size 100m;
    location / { app echo; }
}
`, func(dir string) {
		writeFile(t, filepath.Join(dir, "echoapp.py"), `
def application(environ, start_response):
    n = 0
    while True:
        b = environ['wsgi.input'].read(65536)
        if not b:
            break
        n += len(b)
    size = int(environ.get('QUERY_STRING') or 0)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    if size:
        return [b'x' * size]
    return [b'got %d' % n]
`)
	})
	c := client()
	post := func(n int) (int, string) {
		t.Helper()
		resp, err := c.Post(in.url("/"), "application/octet-stream", bytes.NewReader(make([]byte, n)))
		if err != nil {
			t.Fatalf("POST %d bytes: %v", n, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := post(2 << 20); code != 200 || body != "got 2097152" {
		t.Fatalf("2 MiB upload: %d %q", code, body)
	}
	if code, _ := post(20 << 20); code != http.StatusInternalServerError {
		t.Fatalf("20 MiB upload onto a 4 MiB disk: status %d, want 500", code)
	}
	line := in.waitLog("cannot buffer request body", 5*time.Second)
	if !strings.Contains(line, "no space left on device") {
		t.Errorf("error line does not name the cause: %s", line)
	}
	// The spool was unlinked and closed: the space is back.
	if code, body := post(2 << 20); code != 200 || body != "got 2097152" {
		t.Fatalf("2 MiB upload after the failure: %d %q", code, body)
	}

	// A response larger than the disk: depending on how fast tandem reads
	// it from the worker it streams through whole, or it is buffered and
	// the buffer fills the disk. The latter must be a clean 502 with the
	// cause logged, never a short 200.
	switch r := do(t, c, "GET", in.url("/?20000000"), nil); {
	case r.status == 200 && len(r.body) == 20000000:
	case r.status == http.StatusBadGateway:
		line := in.waitLog("buffering response", 5*time.Second)
		if !strings.Contains(line, "no space left on device") {
			t.Errorf("error line does not name the cause: %s", line)
		}
	default:
		t.Fatalf("20 MB response with a 4 MiB disk: %d, %d bytes", r.status, len(r.body))
	}
	if r := do(t, c, "GET", in.url("/?1000"), nil); r.status != 200 || len(r.body) != 1000 {
		t.Fatalf("small response after the failure: %d, %d bytes", r.status, len(r.body))
	}
}
