package appserver

import "time"

// The arbiter's side of command workers. A command worker (uvicorn, a
// Node server, anything speaking HTTP) is not a one-request-at-a-time
// process like a Python WSGI worker: it serves many requests at once. The
// state machine, supervision, exit reasons and generations are shared with
// Python workers; only dispatch differs:
//
//   - Busy means "at least one request in flight" (worker.inflight); a
//     busy command worker stays on the dispatcher's ready list and takes
//     more requests. It returns to Idle when the last one ends.
//   - A request goes to the ready worker with the fewest requests in
//     flight, ties round robin (dispatcher.leastLoaded). The FIFO queue
//     holds requests only while no worker is ready (all starting after a
//     crash, a scale-up from zero); there is no per-worker cap.
//   - Soft limits (max_requests, max_lifetime, max_memory, reload,
//     scale-down) take a worker off the ready list at once; it gets
//     SIGTERM when its last request ends.
//   - A request past `timeout` is answered 504 by Serve and logged; the
//     worker is not killed for it (command_proxy.go).

// pick is the worker a new request goes to, or nil: for a Python
// generation the most recently idle worker, for a command generation the
// ready worker with the fewest requests in flight.
func (a *arbiter) pick() *worker {
	if a.cur.concurrent() {
		return a.disp.leastLoaded()
	}
	return a.disp.popIdle()
}

// serveQueue hands queued requests to command workers while one is ready.
// The queue is only ever non-empty while none is, so this runs when a
// worker becomes ready.
func (a *arbiter) serveQueue(now time.Time) {
	for a.disp.queued() > 0 {
		w := a.disp.leastLoaded()
		if w == nil {
			return
		}
		a.lease(w, a.disp.dequeue(), now)
	}
}

// undispatch takes w off the list dispatch picks from (before it moves to
// Draining or Exited).
func (a *arbiter) undispatch(w *worker) {
	if w.http != nil {
		a.disp.removeReady(w)
		return
	}
	if w.state == Idle {
		a.disp.removeIdle(w)
	}
}

// longestIdle is the serving worker that has been idle longest, for
// scale-down and idle shrinking; nil if none is idle.
func (a *arbiter) longestIdle() *worker {
	if a.cur == nil || !a.cur.concurrent() {
		if len(a.disp.idle) == 0 {
			return nil
		}
		return a.disp.idle[0] // the bottom of the LIFO list
	}
	var pick *worker
	for _, w := range a.disp.ready {
		if w.state == Idle && (pick == nil || w.idleAt.Before(pick.idleAt)) {
			pick = w
		}
	}
	return pick
}
