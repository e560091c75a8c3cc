package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const superviseApp = `
import os, time

hog = []

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":
        time.sleep(30)
    if path == "/grow":
        hog.append(bytearray(64 << 20))  # touched: counts in RSS
        for i in range(0, len(hog[-1]), 4096):
            hog[-1][i] = 1
    body = ("pid %d" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

func startSupervised(t *testing.T, appDirectives string) *instance {
	t.Helper()
	return startTandem(t, `
app s {
    wsgi sapp:application;
    chdir {{DIR}};
    `+appDirectives+`
}
site _ {
    listen 127.0.0.1:0;
    location / { app s; }
}
`, func(dir string) { writeFile(t, filepath.Join(dir, "sapp.py"), superviseApp) })
}

// A request past `timeout` gets 504, the worker's Python traceback and the
// cause reach the error log, and the pool serves again.
func TestTimeout_504WithTraceback(t *testing.T) {
	in := startSupervised(t, "workers 2; timeout 1s;")
	r := do(t, client(), "GET", in.url("/slow"), nil)
	if r.status != 504 {
		t.Fatalf("GET /slow = %d, want 504", r.status)
	}
	in.waitLog(`sapp.py", line 9 in application`, 10*time.Second) // the hung frame
	in.waitLog(`"reason": "request timeout"`, 10*time.Second)
	waitWorkers(t, in.cmd.Process.Pid, 2, 10*time.Second)
	for i := 0; i < 5; i++ {
		if r := do(t, client(), "GET", in.url("/"), nil); r.status != 200 {
			t.Fatalf("after the timeout: %d", r.status)
		}
	}
}

// max_requests recycles a worker after N requests, logged as such.
func TestMaxRequests_Recycles(t *testing.T) {
	in := startSupervised(t, "workers 1; max_requests 5;")
	pids := map[int]bool{}
	c := client()
	for i := 0; i < 16; i++ {
		r := do(t, c, "GET", in.url("/"), nil)
		if r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		pids[servedPidFrom(t, r.body)] = true
	}
	if len(pids) < 3 {
		t.Fatalf("16 requests with max_requests 5 were served by %d worker(s), want ≥ 3", len(pids))
	}
	in.waitLog(`"reason": "max_requests"`, 5*time.Second)
}

// max_memory retires a worker whose RSS passes the ceiling.
func TestMaxMemory_Recycles(t *testing.T) {
	in := startSupervised(t, "workers 1; max_memory 100m;")
	c := client()
	first := servedPidFrom(t, do(t, c, "GET", in.url("/grow"), nil).body)
	do(t, c, "GET", in.url("/grow"), nil) // now ~128 MiB over the baseline
	in.waitLog(`"reason": "memory ceiling"`, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, c, "GET", in.url("/"), nil)
		if r.status == 200 && servedPidFrom(t, r.body) != first {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %d over max_memory still serves", first)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func servedPidFrom(t *testing.T, body string) int {
	t.Helper()
	m := pidRE.FindStringSubmatch(body)
	if m == nil || !strings.HasPrefix(body, "pid ") {
		t.Fatalf("no pid in %q", body)
	}
	var pid int
	for _, c := range m[1] {
		pid = pid*10 + int(c-'0')
	}
	return pid
}
