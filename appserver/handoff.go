package appserver

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The hand-off fast path. Taking a worker and giving it back happen twice
// per request; as arbiter events they cost two channel round trips to the
// arbiter goroutine: four goroutine wake-ups, each of which may wake an
// idle thread, a maintenance pass per event, and a worker left idle until
// the arbiter gets to run. So request goroutines make these moves
// themselves, under the arbiter's mu, with the arbiter's own code:
//
//   - acquire runs arbiter.acquire: an idle worker is leased at once
//     (Idle → Busy; a command worker may also be leased while Busy, see
//     concurrent.go), else the request joins the FIFO queue, or is
//     refused exactly as before (queue full, pool unavailable).
//   - release runs arbiter.release only when it cannot decide anything:
//     the request ended cleanly, the worker is still Busy (the supervisor
//     did not mark it Draining), it was not reaped, no recycling limit is
//     reached and the pool is not stopping. Then release is Busy → Idle
//     and offer hands the worker straight to the oldest waiter (Idle →
//     Busy), or puts it on the idle list. Every other release — timeouts,
//     crashes, protocol errors, limits, draining, shutdown — is a releaseEv
//     for the arbiter, which decides and then runs its maintenance.
//
// The arbiter holds mu for every turn, so it never sees a half-made move,
// and the fast path never sees a half-made decision. The fast path never
// retires, signals, spawns or logs; the transition table in worker.go stays
// the only authority on moves, because both sides go through setState.
// What the arbiter learns later rather than at once: the queue's front
// (its deadline timer, armed for an earlier waiter, fires early and is
// re-armed; a waiter that no armed timer covers — typically the first
// after the queue was empty — wakes the arbiter to arm one) and idle times
// (read on ticks).

// waiterPool recycles waiters whose grant was received, so the common
// path allocates neither the waiter nor its channel.
var waiterPool = sync.Pool{New: func() any { return newWaiter() }}

// acquireMode is how a request asks for a worker.
type acquireMode uint8

const (
	acquireQueue    acquireMode = iota // an idle worker, else wait in the queue
	acquirePipeline                    // or be pipelined to a busy one (pipeline.go)
	acquireRetry                       // an idle worker, else wait first in the queue
)

// acquire waits for a worker: an idle one at once, else in the FIFO
// queue until one frees up, the queue times out, or ctx ends. With
// acquirePipeline it may instead return a busy worker and a waiter on
// which the request's turn will come (exchange.runBehind).
func (p *Pool) acquire(ctx context.Context, how acquireMode, m *message) (*worker, *waiter, error) {
	if !p.running.Load() {
		return nil, nil, ErrUnavailable
	}
	a := p.a
	wt := waiterPool.Get().(*waiter)
	wt.front, wt.msg = how == acquireRetry, nil
	a.mu.Lock()
	a.acquire(wt, a.now())
	queued := wt.elem != nil // else it was answered at once
	if queued && (a.timerAt.IsZero() || wt.deadline.Before(a.timerAt)) {
		a.wake() // no queue timer would fire by this waiter's deadline
	}
	a.mu.Unlock()
	p.asked.Add(1)
	if queued {
		p.queued.Add(1)
	}
	if !queued {
		return p.granted(wt, <-wt.reply)
	}
	if how == acquirePipeline && m != nil {
		p.offerMessage(wt, m)
	}
	select {
	case g := <-wt.reply:
		return p.granted(wt, g)
	case <-a.done:
		return nil, nil, ErrUnavailable // it answers every waiter before it stops
	case <-ctx.Done():
	}
	// Withdraw. Every grant is sent under mu, so once we hold it the
	// waiter is either still queued (no grant will come) or its grant is
	// already in the channel; a worker granted meanwhile goes back.
	a.mu.Lock()
	queued = a.disp.remove(wt) != nil
	a.mu.Unlock()
	if queued {
		waiterPool.Put(wt)
		return nil, nil, ctx.Err()
	}
	w, turn, err := p.granted(wt, <-wt.reply)
	switch {
	case turn != nil:
		// Its message is with the worker already: runBehind takes it
		// back, or reads and drops its answer.
		return w, turn, nil
	case w != nil:
		p.release(w, outcomeOK)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return nil, nil, err
	}
	return nil, nil, ctx.Err()
}

// granted unpacks g; wt goes back to its pool unless the request's turn
// is still to come on it.
func (p *Pool) granted(wt *waiter, g grant) (*worker, *waiter, error) {
	if g.behind {
		return g.w, wt, nil
	}
	waiterPool.Put(wt)
	return g.w, nil, g.err
}

// offerMessage builds the queued request wt as a pipelining message
// while it waits, and offers it: from now on it may be queued to a busy
// worker (at once, if one can take it).
func (p *Pool) offerMessage(wt *waiter, m *message) {
	msg := m.build()
	if msg == nil {
		return // too large: it waits for an idle worker
	}
	a := p.a
	a.mu.Lock()
	if wt.elem != nil { // still queued
		wt.msg = msg
		a.pipelineHead(a.now())
	}
	a.mu.Unlock()
}

// takeBackBehind takes back the request (stream) pipelined behind w with
// turn if the worker has not read it, and then ends its lease. Under mu,
// so the answer cannot change meanwhile: once its turn comes, another
// request may be queued behind it, whose message a take-back must not
// touch.
func (p *Pool) takeBackBehind(w *worker, turn *waiter, stream uint32) bool {
	a := p.a
	a.mu.Lock()
	took := w.behind == turn && w.next.takeBack(stream, false)
	if took {
		w.behind = nil
		w.inflight--
	}
	a.mu.Unlock()
	if took {
		waiterPool.Put(turn)
	}
	return took
}

// release gives w back with the request's outcome: directly when no
// decision is needed (see above), else through the arbiter. It reports
// whether the fast path handed w straight to a queued request.
func (p *Pool) release(w *worker, out outcome) (handedOn bool) {
	a := p.a
	a.mu.Lock()
	now := a.now()
	fast := a.reusable(w, out, now)
	if fast {
		a.release(w, out, now)
		handedOn = w.state == Busy
	}
	a.mu.Unlock()
	if fast {
		return handedOn
	}
	if !a.send(releaseEv{w: w, out: out}) {
		// The arbiter is gone (only after every worker was reaped).
		w.conn.Close()
	}
	return false
}

// reusable reports whether releasing w with out only puts it back in
// service, so a request goroutine may do it (see above). mu held.
func (a *arbiter) reusable(w *worker, out outcome, now time.Time) bool {
	if out != outcomeOK || a.stopping || w.state != Busy || !w.leased() || w.exit != nil || w.timedOut.Load() {
		return false
	}
	_, hit := a.limitHit(w, w.requests+1, now) // release counts this request first
	return !hit
}

// wake asks the arbiter for a turn without blocking; one pending wake is
// enough.
func (a *arbiter) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
