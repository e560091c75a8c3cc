package appserver

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// The supervisor runs on the arbiter's tick. It only marks: a worker past
// a soft limit is retired (idle: at once; busy: Draining, and release
// retires it after its request). Hard limits escalate: a request past
// `timeout` gets SIGUSR2 (the worker prints every thread's traceback to
// the error log), then SIGKILL killGrace later.

func (a *arbiter) supervise(now time.Time) {
	a.enforceDeadlines(now)
	a.sampleMemory(now)
	a.recycle(now)
	a.autoscale(now)
}

// enforceDeadlines sends the SIGKILLs that are due, and times out requests
// that Serve could not time out itself (it may be blocked writing a
// streamed response to a slow client rather than reading the worker).
func (a *arbiter) enforceDeadlines(now time.Time) {
	for _, w := range a.workers {
		// Command workers serve requests concurrently: one slow request
		// is answered 504 by Serve, never a reason to kill the worker.
		if w.http == nil && w.leased() && !w.timedOut.Load() && now.Sub(w.leasedAt) > w.gen.app.Timeout+backstopSlack {
			a.markTimeout(w, now)
		}
		if !w.killAt.IsZero() && !now.Before(w.killAt) && w.exit == nil {
			a.kill(w)
		}
	}
}

// markTimeout starts the timeout escalation for w: Draining with reason
// RequestTimeout, SIGUSR2 now, SIGKILL at killAt. The request goroutine
// sees timedOut and answers 504.
func (a *arbiter) markTimeout(w *worker, now time.Time) {
	if w.timedOut.Swap(true) {
		return
	}
	if w.state == Busy {
		a.undispatch(w)
		w.setState(Draining)
	}
	w.reason = RequestTimeout
	if w.exit == nil && w.proc != nil {
		w.proc.Signal(syscall.SIGUSR2)
	}
	w.killAt = now.Add(killGrace)
	a.log.Warn("request timed out; worker traceback follows, then SIGKILL", zap.String("app", a.name),
		zap.Int("worker", w.id), zap.Int("pid", w.pid), zap.Duration("timeout", w.gen.app.Timeout))
}

// sampleMemory reads each worker's RSS once per memEvery, only when
// max_memory is set.
func (a *arbiter) sampleMemory(now time.Time) {
	if a.cur == nil || a.cur.app.MaxMemory <= 0 || now.Sub(a.lastMem) < memEvery {
		return
	}
	a.lastMem = now
	for _, w := range a.workers {
		if w.state != Idle && w.state != Busy {
			continue
		}
		if rss, err := a.memory(w.pid); err == nil {
			w.rss = rss
		}
	}
}

// limitHit reports the first recycling limit w has passed once it has
// served requests requests.
func (a *arbiter) limitHit(w *worker, requests int, now time.Time) (ExitReason, bool) {
	app := w.gen.app
	switch {
	case app.MaxMemory > 0 && w.rss > app.MaxMemory:
		return MemoryCeiling, true
	case w.maxRequests > 0 && requests >= w.maxRequests:
		return MaxRequests, true
	case !w.retireAt.IsZero() && !now.Before(w.retireAt):
		return Lifetime, true
	}
	return 0, false
}

// canRecycle enforces "never more than one worker recycling at once per
// app": no recycled worker is still around, and no replacement is still
// starting, so capacity never drops by more than one.
func (a *arbiter) canRecycle() bool {
	for _, w := range a.workers {
		if w.recycling || (w.state == Starting && w.gen == a.cur) {
			return false
		}
	}
	return true
}

// recycle retires at most one worker past a limit, idle ones first (they
// cost nothing to stop).
func (a *arbiter) recycle(now time.Time) {
	if a.stopping || a.cur == nil || !a.canRecycle() {
		return
	}
	var pick *worker
	var why ExitReason
	for _, w := range a.workers {
		if w.gen != a.cur || (w.state != Idle && w.state != Busy) {
			continue
		}
		if r, hit := a.limitHit(w, w.requests, now); hit && (pick == nil || (pick.state == Busy && w.state == Idle)) {
			pick, why = w, r
		}
	}
	if pick == nil {
		return
	}
	pick.recycling = true
	a.log.Info("recycling worker", zap.String("app", a.name), zap.Int("worker", pick.id),
		zap.Int("pid", pick.pid), zap.Stringer("reason", why), zap.Int("requests", pick.requests),
		zap.Int64("rss", pick.rss))
	a.retire(pick, why, now)
}

// autoscale grows the pool by one worker per scaleUpAfter while requests
// keep queueing (up to max_workers), and shrinks it by one per
// idleShrinkAfter while a worker stays idle that long (down to base).
func (a *arbiter) autoscale(now time.Time) {
	if a.cur == nil || a.stopping {
		return
	}
	app := a.cur.app
	if a.disp.queued() > 0 {
		switch {
		case a.queueSince.IsZero():
			a.queueSince = now
		case now.Sub(a.queueSince) >= scaleUpAfter && a.want < app.MaxWorkers:
			a.want++
			a.queueSince, a.lastScale = now, now
			a.log.Info("queue pressure: adding a worker", zap.String("app", a.name),
				zap.Int("workers", a.want), zap.Int("queued", a.disp.queued()))
		}
		return
	}
	a.queueSince = time.Time{}
	if w := a.longestIdle(); a.want > a.base && w != nil &&
		now.Sub(w.idleAt) >= idleShrinkAfter && now.Sub(a.lastScale) >= idleShrinkAfter {
		a.want--
		a.lastScale = now
		a.log.Info("idle: removing a worker", zap.String("app", a.name), zap.Int("workers", a.want))
	}
}

var pageSize = int64(os.Getpagesize())

// rssOf reads a process's resident set size from /proc/PID/statm (second
// field, in pages).
func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, fmt.Errorf("statm of %d: %q", pid, b)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("statm of %d: %w", pid, err)
	}
	return pages * pageSize, nil
}
