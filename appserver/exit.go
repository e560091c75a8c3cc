package appserver

import (
	"fmt"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ExitReason is why a worker stopped. The arbiter sets it when it decides
// (or Crash when nobody did); reap joins it with the exit code or signal,
// so no exit is ever logged as an ambiguous "worker died".
type ExitReason uint8

const (
	// Crash: the process died without being asked to (exit code or signal).
	Crash ExitReason = iota
	// RequestTimeout: a request ran past `timeout`; killed after a traceback.
	RequestTimeout
	// MemoryCeiling: RSS above `max_memory`; retired after its request.
	MemoryCeiling
	// MaxRequests: served `max_requests` (+ jitter) requests.
	MaxRequests
	// Lifetime: older than `max_lifetime` (+ jitter).
	Lifetime
	// Reload: its generation was replaced by a newer one.
	Reload
	// ScaleDown: the pool shrank (SIGTTOU or idle shrinking).
	ScaleDown
	// BootFailed: the app failed to import (exit code 3) or the worker
	// failed before it was ready; respawning stops.
	BootFailed
	// Shutdown: tandem is stopping.
	Shutdown
	// ProtocolError: the worker broke the protocol; killed.
	ProtocolError
)

var reasonNames = [...]string{
	Crash: "crash", RequestTimeout: "request timeout", MemoryCeiling: "memory ceiling",
	MaxRequests: "max_requests", Lifetime: "max_lifetime", Reload: "reload",
	ScaleDown: "scale-down", BootFailed: "boot failed", Shutdown: "shutdown",
	ProtocolError: "protocol error",
}

func (r ExitReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("ExitReason(%d)", r)
}

// planned reports exits the arbiter asked for and that are routine.
func (r ExitReason) planned() bool {
	switch r {
	case MaxRequests, Lifetime, Reload, ScaleDown, Shutdown:
		return true
	}
	return false
}

// recycle reports the limits of which only one may be acted on at a time.
func (r ExitReason) recycle() bool {
	return r == MaxRequests || r == Lifetime || r == MemoryCeiling
}

// exitStatus is how a process ended, from wait(2).
type exitStatus struct {
	Code   int            // exit code; -1 when killed by a signal
	Signal syscall.Signal // 0 unless killed by a signal
	Err    error          // wait itself failed
}

func (s exitStatus) String() string {
	switch {
	case s.Err != nil:
		return "wait failed: " + s.Err.Error()
	case s.Signal != 0:
		return fmt.Sprintf("signal %d (%s)", int(s.Signal), s.Signal)
	default:
		return fmt.Sprintf("exit code %d", s.Code)
	}
}

// exitCodeBootFailed is the worker's "app failed to import" exit code
// (docs/protocol.md); like gunicorn's, it stops respawning.
const exitCodeBootFailed = 3

// logExit writes one line per worker exit: app, worker, pid, reason and
// how the process ended. Routine exits log at info, the rest at warn or
// error, and SIGKILL we did not send hints at the OOM killer (gunicorn).
func logExit(log *zap.Logger, app string, w *worker, st exitStatus) {
	fields := []zap.Field{
		zap.String("app", app), zap.Int("worker", w.id), zap.Int("pid", w.pid),
		zap.Int("generation", w.gen.id), zap.Stringer("reason", w.reason),
		zap.Int("requests", w.requests),
	}
	if st.Signal != 0 {
		fields = append(fields, zap.Int("signal", int(st.Signal)), zap.String("signal_name", st.Signal.String()))
	} else if st.Err == nil {
		fields = append(fields, zap.Int("exit_code", st.Code))
	} else {
		fields = append(fields, zap.Error(st.Err))
	}
	level := zapcore.InfoLevel
	msg := "worker exited"
	switch {
	case w.reason == Crash && st.Signal == syscall.SIGKILL && !w.killed:
		level, msg = zapcore.ErrorLevel, "worker exited: SIGKILL that tandem did not send (out of memory?)"
	case w.reason == Crash || w.reason == BootFailed || w.reason == ProtocolError:
		level = zapcore.ErrorLevel
	case w.reason == RequestTimeout || w.reason == MemoryCeiling:
		level = zapcore.WarnLevel
	case !w.reason.planned():
		level = zapcore.WarnLevel
	}
	if ce := log.Check(level, msg); ce != nil {
		ce.Write(fields...)
	}
}
