package main

import (
	"bytes"
	"fmt"
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
		{"5ms", 200 * time.Microsecond, 5 * time.Millisecond, true, false}, // asked for: wins over any current
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
// process, with the timer slack TANDEM_TIMER_SLACK asks for, or 1 ms
// when it was started with the kernel's default; its workers do not see
// the re-execution's marker.
func TestRun_TimerSlack(t *testing.T) {
	own := currentTimerSlack() // what the tandem process inherits from this one
	const static = "site _ {\n    listen 127.0.0.1:0;\n    root {{DIR}};\n}\n"
	const app = "app hello { wsgi hello:application; chdir {{DIR}}; workers 1; }\n" +
		"site _ {\n    listen 127.0.0.1:0;\n    location / { app hello; }\n}\n"
	for _, c := range []struct {
		name, setting, config string
	}{
		{"app", "", app},
		{"static", "", static},
		{"static 300us", "300us", static},
		{"app off", "off", app},
		{"bad value", "soon", static}, // reported, and tandem runs as it was
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(timerSlackEnv, c.setting)
			if c.setting == "" {
				os.Unsetenv(timerSlackEnv) // t.Setenv restores it afterwards
			}
			want, _, badValue := timerSlackPlan(c.setting, own)
			in := startTandem(t, c.config, func(dir string) {
				src, err := os.ReadFile("../../examples/quickstart/hello.py")
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "hello.py"), string(src))
				writeFile(t, filepath.Join(dir, "index.html"), "hi")
			})
			pid := in.cmd.Process.Pid
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/timerslack_ns")
			if err != nil {
				t.Skipf("no per-process timer slack to read: %v", err)
			}
			got, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil || time.Duration(got) != want {
				t.Fatalf("tandem (pid %d) runs with a timer slack of %v, want %v (started from %v)", pid, time.Duration(got), want, own)
			}
			if code, _ := rawGet(t, in.addrs[0], "/"); code != 200 {
				t.Fatalf("after the re-execution: %d", code)
			}
			const complaint = `tandem: TANDEM_TIMER_SLACK="soon": want a duration from 1ns to 1s, or off (timer slack stays`
			if got := strings.Contains(in.logText(), complaint); got != (badValue != nil) {
				t.Errorf("stderr has %q: %v, want %v; log:\n%s", complaint, got, badValue != nil, in.logText())
			}
			kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
			if c.config == app && len(strings.Fields(string(kids))) == 0 {
				t.Fatalf("no child processes of tandem to look at (/proc/%d/task/%d/children)", pid, pid)
			}
			for _, kid := range strings.Fields(string(kids)) {
				env, err := os.ReadFile("/proc/" + kid + "/environ")
				if err == nil && bytes.Contains(env, []byte(timerSlackExecEnv)) {
					t.Errorf("child %s of tandem has %s in its environment", kid, timerSlackExecEnv)
				}
			}
		})
	}
}
