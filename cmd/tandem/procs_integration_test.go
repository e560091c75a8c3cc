package main

import (
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestRun_IdleShedsProcessors: the processor governor (edge/procs) runs in
// `tandem run`: an idle instance on a machine with more than one core
// comes down to one processor, logged at debug level, and still serves.
func TestRun_IdleShedsProcessors(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one core: the governor has nothing to shed")
	}
	// GOMAXPROCS in tandem's environment turns the governor off (as
	// documented), and tandem inherits the test's: a run of the suite
	// with GOMAXPROCS=1 would wait here for a line that cannot come.
	if v, ok := os.LookupEnv("GOMAXPROCS"); ok {
		os.Unsetenv("GOMAXPROCS")
		t.Cleanup(func() { os.Setenv("GOMAXPROCS", v) })
	}
	in := startTandem(t, `
error_log stderr debug;
site s {
    listen 127.0.0.1:0;
    location / { return 200 "ok"; }
}
`, nil)
	// One processor fewer per try, a try every few 0.5 s samples.
	in.waitLog(`"to": 1,`, time.Duration(runtime.NumCPU())*5*time.Second)
	if r := do(t, client(), http.MethodGet, in.url("/"), nil); r.status != http.StatusOK || r.body != "ok" {
		t.Fatalf("GET / with one processor: %d %q", r.status, r.body)
	}
}
