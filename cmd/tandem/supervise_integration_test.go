package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
    if path == "/nap":
        time.sleep(0.4)
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

// max_lifetime recycles workers by age, one at a time, under a bounded
// load with no failed request; the exits are logged as such.
func TestMaxLifetime_RecyclesUnderLoad(t *testing.T) {
	in := startSupervised(t, "workers 2; max_lifetime 1s jitter 200ms;")
	c := client()
	pids := map[int]bool{}
	failed, total := 0, 0
	deadline := time.Now().Add(20 * time.Second)
	// Until both original workers have been replaced twice over (or the
	// deadline): at most 200000 requests.
	for total < 200000 && time.Now().Before(deadline) && in.countLog(`"reason": "max_lifetime"`) < 4 {
		r := do(t, c, "GET", in.url("/"), nil)
		total++
		if r.status != 200 {
			failed++
			continue
		}
		pids[servedPidFrom(t, r.body)] = true
	}
	if n := in.countLog(`"reason": "max_lifetime"`); n < 4 {
		t.Fatalf("%d max_lifetime exits in %d requests, want ≥ 4\n%s", n, total, in.logText())
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed while workers were recycled", failed, total)
	}
	// Dispatch reuses the most recently idle worker, so a sequential
	// client may never meet some of the replacements; it must have met
	// at least one.
	if len(pids) < 2 {
		t.Errorf("%d requests were served by %d worker(s); recycling should have brought new ones", total, len(pids))
	}
	waitWorkers(t, in.cmd.Process.Pid, 2, 10*time.Second)
	t.Logf("%d requests, %d worker pids, %d lifetime exits", total, len(pids), in.countLog(`"reason": "max_lifetime"`))
}

// Scaling through the binary: queue pressure grows the pool from 1 towards
// max_workers (one more per second of non-empty queue), and SIGTTOU /
// SIGTTIN take one away and add one back, within the bounds.
func TestScaling_QueuePressureAndSignals(t *testing.T) {
	in := startSupervised(t, "workers 1; min_workers 1; max_workers 3;")
	pid := in.cmd.Process.Pid
	waitWorkers(t, pid, 1, 10*time.Second)

	// 6 clients on a 0.4 s endpoint keep the queue non-empty; bounded to
	// 15 s and 300 requests in all.
	stop := time.Now().Add(15 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, failed := 0, 0
	grown := make(chan struct{})
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client()
			for time.Now().Before(stop) {
				select {
				case <-grown:
					return
				default:
				}
				mu.Lock()
				if sent >= 300 {
					mu.Unlock()
					return
				}
				sent++
				mu.Unlock()
				if r := do(t, c, "GET", in.url("/nap"), nil); r.status != 200 {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		}()
	}
	waitWorkers(t, pid, 3, 15*time.Second)
	close(grown)
	wg.Wait()
	if failed != 0 {
		t.Errorf("%d of %d requests failed while the pool grew", failed, sent)
	}
	in.waitLog("queue pressure: adding a worker", 5*time.Second)

	if err := in.cmd.Process.Signal(syscall.SIGTTOU); err != nil {
		t.Fatal(err)
	}
	waitWorkers(t, pid, 2, 10*time.Second)
	if err := in.cmd.Process.Signal(syscall.SIGTTIN); err != nil {
		t.Fatal(err)
	}
	waitWorkers(t, pid, 3, 10*time.Second)
	// At max_workers, SIGTTIN adds nothing.
	if err := in.cmd.Process.Signal(syscall.SIGTTIN); err != nil {
		t.Fatal(err)
	}
	r := do(t, client(), "GET", in.url("/"), nil) // the signal has been handled by now or soon
	if r.status != 200 {
		t.Fatalf("GET / after scaling: %d", r.status)
	}
	if n := countWorkerProcs(pid); n != 3+1 {
		t.Errorf("%d worker processes (zygote included) after SIGTTIN at max_workers, want 4", n)
	}
}

// workApp sleeps on /work after marking the request started, so a test
// knows it is in flight.
const workApp = `
import os, time

def application(environ, start_response):
    open(os.path.join(os.environ["MARK_DIR"], "started"), "w").close()
    time.sleep(float(os.environ["WORK_SECONDS"]))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]
`

// SIGTERM with an app request in flight: it finishes when it fits in
// graceful_timeout, and is cut (502) when it does not, tandem exiting
// soon after graceful_timeout rather than when the request would end.
func TestStop_AppRequestAndGracefulTimeout(t *testing.T) {
	for _, tc := range []struct {
		name        string
		work, grace string
		wantStatus  int
		maxExit     time.Duration
	}{
		{"fits", "1", "10s", 200, 10 * time.Second},
		{"cut", "30", "1s", 502, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := startTandem(t, `
app w {
    wsgi wapp:application;
    chdir {{DIR}};
    workers 1;
    graceful_timeout `+tc.grace+`;
    env MARK_DIR {{DIR}};
    env WORK_SECONDS `+tc.work+`;
}
site _ {
    listen 127.0.0.1:0;
    location / { app w; }
}
`, func(dir string) { writeFile(t, filepath.Join(dir, "wapp.py"), workApp) })
			got := make(chan result, 1)
			go func() { got <- do(t, client(), "GET", in.url("/work"), nil) }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := os.Stat(filepath.Join(in.dir, "started")); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the request never reached the app\n%s", in.logText())
				}
				time.Sleep(10 * time.Millisecond)
			}
			start := time.Now()
			code := in.stop(tc.maxExit)
			took := time.Since(start)
			r := <-got
			if r.status != tc.wantStatus {
				t.Errorf("in-flight request: %d %q, want %d", r.status, r.body, tc.wantStatus)
			}
			if code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			t.Logf("exited %v after SIGTERM (graceful_timeout %s, request %ss)", took.Round(time.Millisecond), tc.grace, tc.work)
		})
	}
}
