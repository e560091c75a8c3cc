package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTimerSlackPlan(t *testing.T) {
	for _, c := range []struct {
		setting string
		current time.Duration
		want    time.Duration
		change  bool
		err     bool
	}{
		{"", kernelTimerSlack, time.Millisecond, true, false},
		{"", 200 * time.Microsecond, 200 * time.Microsecond, false, false}, // the operator's choice stays
		{"", time.Millisecond, time.Millisecond, false, false},
		{"off", kernelTimerSlack, kernelTimerSlack, false, false},
		{"300us", kernelTimerSlack, 300 * time.Microsecond, true, false},
		{"300us", 300 * time.Microsecond, 300 * time.Microsecond, false, false},
		{"5ms", 200 * time.Microsecond, 5 * time.Millisecond, true, false}, // explicit wins over any current
		{"fast", kernelTimerSlack, kernelTimerSlack, false, true},
		{"0s", kernelTimerSlack, kernelTimerSlack, false, true},
		{"-1ms", kernelTimerSlack, kernelTimerSlack, false, true},
		{"2s", kernelTimerSlack, kernelTimerSlack, false, true},
	} {
		want, change, err := timerSlackPlan(c.setting, c.current)
		if want != c.want || change != c.change || (err != nil) != c.err {
			t.Errorf("timerSlackPlan(%q, %v) = %v, %v, %v; want %v, %v, error %v",
				c.setting, c.current, want, change, err, c.want, c.change, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), timerSlackEnv) {
			t.Errorf("error %q does not name %s", err, timerSlackEnv)
		}
	}
}

// TestRun_TimerSlack: `tandem run` re-executes itself, as the same
// process, with the timer slack TANDEM_TIMER_SLACK asks for (or 1 ms
// when the slack it was started with is the kernel's default).
func TestRun_TimerSlack(t *testing.T) {
	own := currentTimerSlack() // what the tandem process inherits from this one
	for _, setting := range []string{"", "300us", "off"} {
		t.Run("setting="+setting, func(t *testing.T) {
			t.Setenv(timerSlackEnv, setting)
			if setting == "" {
				os.Unsetenv(timerSlackEnv) // t.Setenv restores it afterwards
			}
			want, _, err := timerSlackPlan(setting, own)
			if err != nil {
				t.Fatal(err)
			}
			in := startTandem(t, "site _ {\n    listen 127.0.0.1:0;\n    root {{DIR}}/www;\n}\n", func(dir string) {
				writeFile(t, filepath.Join(dir, "www", "index.html"), "hi")
			})
			b, err := os.ReadFile("/proc/" + strconv.Itoa(in.cmd.Process.Pid) + "/timerslack_ns")
			if err != nil {
				t.Skipf("no per-process timer slack to read: %v", err)
			}
			got, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil || time.Duration(got) != want {
				t.Fatalf("tandem (pid %d) runs with a timer slack of %v, want %v (started from %v)", in.cmd.Process.Pid, time.Duration(got), want, own)
			}
			if code, body := rawGet(t, in.addrs[0], "/"); code != 200 || body != "hi" {
				t.Fatalf("after the re-execution: %d %q", code, body)
			}
		})
	}
}
