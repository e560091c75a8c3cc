package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Timer slack: how late the kernel may wake a thread from a timed sleep,
// so that it can batch wake-ups. Linux's default is 50 µs; `tandem run`
// gives its threads 1 ms.
//
// Why: the Go runtime's monitor thread (sysmon) sleeps 20 µs at a time
// while the process is busy, and each wake-up is a timer interrupt and a
// context switch, which under a hypervisor cost far more than the 20 µs.
// And a thread it finds in the same system call on two wake-ups in a row
// has its processor handed to another thread (a futex wake-up each way).
// Under Flask load on 2 cores the monitor used about a sixth of tandem's
// CPU time. With 1 ms of slack it wakes about 4× less often and only
// system calls that last about a millisecond lose their processor:
// tandem served 7 % more Flask requests with 10 µs less of its own CPU
// per request. Static files and reverse proxying: no difference beyond
// the noise (docs/architecture.md, "Timer slack").
//
// What it costs: a timed sleep may last up to 1 ms longer. tandem's own
// timers are milliseconds or more (the runtime's network poller waits
// in whole milliseconds anyway). Processes tandem starts inherit the
// slack; wake-ups on I/O, which is what a web app waits for, are not
// affected.
//
// The slack is a per-thread value that new threads inherit, and the Go
// runtime starts its monitor before any of tandem's code runs, so the
// only way to give it one is to set it and re-execute: once `tandem run`
// has loaded its config, and before it does anything else, it sets the
// slack on its thread and executes itself again (same process ID,
// arguments and environment). TANDEM_TIMER_SLACK chooses: unset for
// 1 ms, a duration ("500us") for another value, "off" to leave the slack
// alone. An operator's own setting (systemd's TimerSlackNSec=, anything
// but the kernel's default) is left alone too.

const (
	timerSlackEnv     = "TANDEM_TIMER_SLACK"
	timerSlackExecEnv = "TANDEM_TIMER_SLACK_EXECUTED" // set across the re-execution only
	defaultTimerSlack = time.Millisecond
	kernelTimerSlack  = 50 * time.Microsecond

	prSetTimerSlack = 29 // PR_SET_TIMERSLACK
	prGetTimerSlack = 30 // PR_GET_TIMERSLACK
)

// timerSlackPlan decides the slack to run with from TANDEM_TIMER_SLACK
// (setting) and the slack the process has now; change is false when the
// current one stays.
func timerSlackPlan(setting string, current time.Duration) (want time.Duration, change bool, err error) {
	switch setting {
	case "":
		if current != kernelTimerSlack {
			return current, false, nil // chosen by whoever started tandem
		}
		want = defaultTimerSlack
	case "off":
		return current, false, nil
	default:
		want, err = time.ParseDuration(setting)
		if err != nil || want < time.Nanosecond || want > time.Second {
			return current, false, fmt.Errorf("%s=%q: want a duration from 1ns to 1s, or off", timerSlackEnv, setting)
		}
	}
	return want, want != current, nil
}

// currentTimerSlack is the calling thread's timer slack.
func currentTimerSlack() time.Duration {
	r, _, _ := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTimerSlack, 0, 0)
	return time.Duration(r)
}

// adjustTimerSlack runs in `tandem run` once the config is loaded and
// before anything else: it sets the timer slack and re-executes tandem,
// or returns when there is nothing to change, or when the process is
// that re-execution. An error leaves the slack as it was and tandem
// running; it only says why the slack was not changed.
func adjustTimerSlack() error {
	if os.Getenv(timerSlackExecEnv) != "" {
		// The re-execution: the slack is set. Not for child processes.
		return os.Unsetenv(timerSlackExecEnv)
	}
	current := currentTimerSlack()
	want, change, err := timerSlackPlan(os.Getenv(timerSlackEnv), current)
	if err != nil || !change {
		return err
	}
	// The slack is the calling thread's, and execve keeps the thread
	// that calls it: both must be this one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread() // reached only if the exec fails
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(want), 0); e != 0 {
		return fmt.Errorf("set timer slack: %w", e)
	}
	if err := os.Setenv(timerSlackExecEnv, "1"); err != nil {
		return fmt.Errorf("set timer slack: %w", err)
	}
	// /proc/self/exe is this very binary even if it was replaced on disk
	// since (an upgrade): what runs is what was started.
	err = syscall.Exec("/proc/self/exe", os.Args, os.Environ())
	// Still here: the exec failed (no /proc, say). Carry on as we were.
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(current), 0)
	os.Unsetenv(timerSlackExecEnv)
	return fmt.Errorf("re-execute with a longer timer slack: %w", err)
}
