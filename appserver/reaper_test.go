package appserver

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

func TestParseZombieStat(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		ppid       int
		ok         bool
		comm       string
		start      uint64
	}{
		{"zombie child", "42 (sleep) Z 7 42 7 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0", 7, true, "sleep", 98765},
		{"comm with spaces and parens", "42 (a) b (c)) Z 7 42 7 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", 7, true, "a) b (c)", 5},
		{"another parent", "42 (sleep) Z 8 42 7 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0", 7, false, "", 0},
		{"running", "42 (sleep) S 7 42 7 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0", 7, false, "", 0},
		{"truncated", "42 (sleep) Z 7 42", 7, false, "", 0},
		{"garbage", "nonsense", 7, false, "", 0},
	} {
		z, ok := parseZombieStat([]byte(tc.stat), tc.ppid)
		if ok != tc.ok || z.comm != tc.comm || z.start != tc.start {
			t.Errorf("%s: got %+v %v, want ok=%v comm=%q start=%d", tc.name, z, ok, tc.ok, tc.comm, tc.start)
		}
	}
}

// An orphan re-parented to a subreaper is reaped (with its exit status
// logged) once two scans found it; a child whose parent waits for it
// keeps its exit status.
func TestReaper_ReapsOrphansOnly(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	r := startReaper(zap.New(core), 20*time.Millisecond)
	defer r.close()

	// A child waited for from the start, outliving many scans.
	waited := exec.Command("/bin/sh", "-c", "sleep 0.3; exit 5")
	if err := waited.Start(); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- waited.Wait() }()

	// The subshell outlives its parent sh and is re-parented to us; its
	// pid is printed first.
	out, err := exec.Command("/bin/sh", "-c", "(sleep 0.1; exit 7) & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("orphan pid %q: %v", out, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries := logs.FilterMessageSnippet("reaped an orphaned process").FilterField(zap.Int("pid", orphan)).All()
		if len(entries) > 0 {
			if code, ok := entries[0].ContextMap()["exit_code"]; !ok || code != int64(7) {
				t.Errorf("reaped with fields %v, want exit_code 7", entries[0].ContextMap())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d not reaped within 10s; logs: %v", orphan, logs.All())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); err == nil {
		t.Errorf("orphan %d still in /proc after it was reaped", orphan)
	}

	err = <-waitErr
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
		t.Errorf("the waited-for child's status: %v, want exit status 5", err)
	}
	if n := logs.FilterMessageSnippet("reaped").FilterField(zap.Int("pid", waited.Process.Pid)).Len(); n != 0 {
		t.Errorf("the reaper took a child someone was waiting for")
	}
}
