package appserver

import (
	"errors"
	"time"
)

// Pipelining: one request written ahead to a busy Python worker.
//
// Under load every worker is busy and requests wait. If a waiting request
// is written to a worker only once that worker has answered the one before,
// the worker sleeps between the two: it sends its answer, blocks in
// poll(), and is woken when the next request arrives a round trip later.
// Measured with Flask on 2 cores, tandem's workers slept once per request
// and spent 160 µs of CPU on each, where uWSGI's workers, finding the next
// connection already in their accept queue, slept once per 8 and spent
// 108 µs (docs/benchmarks-app.md). So, when no worker is idle, a small
// request is written at once to a busy worker, behind the request it is
// serving; the worker reads it as soon as it has answered, without
// sleeping. The request goroutine waits for its turn, then reads the
// response as usual.
//
// The rules:
//   - Only when no worker is idle and nobody is queued: a queued request
//     is older, so it goes first (it is pipelined when a worker's turn
//     passes, see passTurn).
//   - Only requests whose frames are small (no body, or one up to
//     inlineBody), so writing them never waits for the worker.
//   - At most one request behind each worker, and only once every frame of
//     the request ahead of it is written (worker.sending).
//   - Only behind a request that is likely to end soon: the app's recent
//     requests take less than pipelineSlowApp on average, and the current
//     one has run less than twice that average. Among those workers, the
//     one whose request has run longest. A slow request (a report, an
//     upload) thus rarely has anything waiting behind it; when it has, the
//     wait is bounded by `timeout`, as for any request.
//   - Not behind a request that will retire its worker (max_requests).
//
// When the request ahead fails, whether the one behind was started decides
// what happens to it. The worker reads a request only after writing the
// last frame of the previous response, and a stream socket keeps order:
//   - The connection broke before that last frame: the request behind was
//     never read. It is dispatched again (errRetry), first in the queue.
//   - The request ahead timed out: Serve stopped reading at its deadline,
//     and the worker is being killed (SIGKILL within killGrace). The
//     request behind reads on (salvage): the end of the response ahead
//     means the worker may have started it, so it is answered like any
//     request on a dying worker; the connection ending before that means
//     it was never read, and it is dispatched again.
//   - Otherwise (an error frame, a protocol error) it gets its turn and
//     fails or succeeds like any request on that worker.

// errRetry tells a pipelined request that its worker failed before
// reading it: dispatch it again.
var errRetry = errors.New("worker failed before the pipelined request started")

// pipelineSlowApp: an app whose requests take this long on average gains
// nothing worth the risk of waiting behind a slow request.
const pipelineSlowApp = 20 * time.Millisecond

// pipelineTarget returns a busy worker the request can be pipelined to,
// marked sending, or nil. mu held.
func (a *arbiter) pipelineTarget(now time.Time) *worker {
	limit, ok := a.pipeAge()
	if !ok || a.cur.concurrent() {
		return nil
	}
	var best *worker
	for _, w := range a.workers {
		if w.gen != a.cur || !a.canPipeline(w, now, limit) {
			continue
		}
		if best == nil || w.leasedAt.Before(best.leasedAt) {
			best = w
		}
	}
	if best == nil {
		return nil
	}
	best.sending.Store(true) // only request goroutines clear it; we hold mu
	return best
}

// pipeAge is how long the request ahead may have run for a request to be
// pipelined behind it; false when the app's requests are too slow on
// average (or none was timed yet). mu held.
func (a *arbiter) pipeAge() (time.Duration, bool) {
	if a.svcTime == 0 || a.svcTime >= a.pipeSlowApp {
		return 0, false
	}
	if a.pipeMaxAge > 0 {
		return a.pipeMaxAge, true
	}
	return 2 * a.svcTime, true
}

// canPipeline reports whether a request may be written behind w's
// current one, now. mu held.
func (a *arbiter) canPipeline(w *worker, now time.Time, limit time.Duration) bool {
	if w.state != Busy || w.http != nil || w.behind != nil || w.inflight != 1 || w.timedOut.Load() || w.sending.Load() {
		return false
	}
	if now.Sub(w.leasedAt) >= limit {
		return false
	}
	_, hit := a.limitHit(w, w.requests+1, now) // the current request's release counts it
	return !hit
}

// leaseBehind pipelines wt's request to w (marked sending by the caller).
func (a *arbiter) leaseBehind(w *worker, wt *waiter) {
	w.behind = wt
	w.inflight++
	wt.reply <- grant{w: w, behind: true}
}

// passTurn runs when w's current request is released with out: the
// request behind it gets its turn, or errRetry if the worker cannot have
// read it (see above). mu held.
func (a *arbiter) passTurn(w *worker, out outcome, now time.Time) {
	b := w.behind
	w.behind = nil
	if out == outcomeCrash {
		w.inflight--
		b.reply <- grant{err: errRetry}
		return
	}
	w.leasedAt = now
	b.reply <- grant{w: w, salvage: out == outcomeTimeout}
}

// pipelineQueued writes the oldest queued request behind w's new current
// one, if it may be. mu held.
func (a *arbiter) pipelineQueued(w *worker, now time.Time) {
	e := a.disp.queue.Front()
	if e == nil || !e.Value.(*waiter).pipeline {
		return
	}
	if limit, ok := a.pipeAge(); !ok || !a.canPipeline(w, now, limit) {
		return
	}
	w.sending.Store(true)
	a.leaseBehind(w, a.disp.dequeue())
}

// pipelineNext writes the oldest queued request behind w's current one,
// whose frames are now written, if it may be.
func (p *Pool) pipelineNext(w *worker) {
	a := p.a
	if a.disp.waiting.Load() == 0 {
		return
	}
	a.mu.Lock()
	a.pipelineQueued(w, a.now())
	a.mu.Unlock()
}

// noteService folds one request's service time into the app's average
// (an exponentially weighted moving average over about 16 requests).
func (a *arbiter) noteService(d time.Duration) {
	if a.svcTime == 0 {
		a.svcTime = d
		return
	}
	a.svcTime += (d - a.svcTime) / 16
}
