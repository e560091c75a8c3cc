package appserver

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/appserver/wire"
)

// Pipelining: one request queued ahead to a busy Python worker.
//
// Under load every worker is busy and requests wait. If a waiting request
// reaches a worker only once that worker has answered the one before, the
// worker sleeps between the two: it sends its answer, blocks in poll(),
// and is woken when the next request arrives a round trip later. Measured
// with Flask on 2 cores, tandem's workers slept once per request and spent
// 135 µs of CPU on each, where uWSGI's workers, finding the next
// connection already in their accept queue, rarely slept and spent 108 µs
// (docs/benchmarks-app.md). So a small request that finds no worker idle
// is built, while it waits in the queue, into one message, which the
// arbiter queues to a busy worker; the worker takes it as soon as it has
// answered, without sleeping. The request goroutine waits for its turn,
// then reads the response as usual.
//
// The queue is a SOCK_SEQPACKET socket pair per worker, made by the worker
// and sent to tandem with its R frame (nextQueue). tandem writes a
// pipelined request (H, body, E: a complete request) as one message; the
// worker reads it when it is idle. tandem keeps a copy of the worker's
// reading end, so it can take the message back, and the kernel hands a
// message to exactly one reader: whoever reads it first owns it. A
// request taken back was never seen by the worker and is dispatched again,
// first in the queue; one the worker took is answered by it. That makes
// two things safe:
//   - Patience. A request behind one that turns out to be slow (a report
//     behind which a page was queued) takes itself back after twice the
//     app's average service time (1–5 ms), so no request waits long
//     behind a slow one, which a worker pool must never do (issue 3's
//     fairness test; gunicorn's and uWSGI's shared accept queue has the
//     same property).
//   - Failure. When the request ahead fails (crash, timeout, protocol
//     error), the worker is dying; the request behind takes itself back
//     and is served elsewhere, unless the worker had already taken it:
//     then it shares the worker's fate (502), as any request in flight.
//
// The rules for queueing a request behind a worker:
//   - Only the oldest queued request, once its message is built: when
//     it is, when a worker passes its turn, when a worker's latest request
//     is all written, and when a request joins the queue.
//   - Only small requests (no body, or one up to pipelineMaxBody), so
//     one message carries them.
//   - At most one behind each worker, and only once the worker's latest
//     request is all written (worker.sending), so the worker meets
//     requests in the order tandem numbered them (see serve in
//     tandem_worker.py).
//   - Only if the app's requests take less than pipelineSlowApp on average
//     (beyond that, the sleep saved is noise), and behind a request that
//     has run less than twice that average. Among such workers, the one
//     whose request has run longest.
//   - Not behind a request that will retire its worker (max_requests).

const (
	// pipelineSlowApp: an app whose requests take this long on average
	// gains nothing worth a request's wait behind another.
	pipelineSlowApp = 20 * time.Millisecond
	// A pipelined request waits for its turn twice the app's average
	// service time, within these bounds, then takes itself back. The
	// average is pulled up by every slow request, so the upper bound is
	// what keeps a fast request from waiting long behind a slow one.
	pipelineMinPatience = time.Millisecond
	pipelineMaxPatience = 5 * time.Millisecond
	// pipelineMaxBody: the largest request body pipelined.
	pipelineMaxBody = 16 << 10
	// pipelineMaxMsg: the largest message (head and body frames); the
	// worker reads messages into a buffer of this size.
	pipelineMaxMsg = 64 << 10
)

// nextQueue is tandem's side of a worker's pipelining queue: the end it
// writes messages to, and a copy of the worker's end, to take a message
// back. Both are shared with the worker, so neither is switched to
// non-blocking mode (that flag belongs to the open file, which the worker
// shares); each call passes MSG_DONTWAIT instead. Safe for concurrent use.
type nextQueue struct {
	send, take *os.File
}

// takeNextQueue takes the two descriptors a worker sends with its R
// frame; nil if it sent none (then it is never pipelined to).
func takeNextQueue(rd *wire.Reader) *nextQueue {
	send, ok := rd.TakeFile("tandem-next-send")
	if !ok {
		return nil
	}
	take, ok := rd.TakeFile("tandem-next-take")
	if !ok {
		send.Close()
		return nil
	}
	return &nextQueue{send: send, take: take}
}

// push queues msg for the worker. The queue holds at most one message
// (one request behind), so it never blocks.
func (q *nextQueue) push(msg []byte) error {
	if len(msg) > pipelineMaxMsg {
		return fmt.Errorf("pipelined request of %d bytes exceeds %d", len(msg), pipelineMaxMsg)
	}
	var err error
	for {
		err = syscall.Sendto(int(q.send.Fd()), msg, syscall.MSG_DONTWAIT, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("queue pipelined request: %w", err)
	}
	return nil
}

// takeBack removes the message of request stream if the worker has not
// read it, and reports whether it did. The queue holds at most two
// messages: the request ahead's, if the worker has not read it yet, and
// this one's, behind it (the kernel hands out the oldest first, whoever
// asks). So a request takes back only its own message, and only if it is
// the oldest; if the request ahead is still queued, the worker has not
// even started that one, and the request behind waits for its turn.
// With drain (the worker is dying: the request ahead failed), the
// messages ahead of it are discarded on the way.
func (q *nextQueue) takeBack(stream uint32, drain bool) bool {
	var h [wire.HeaderLen]byte
	if !drain {
		n, err := q.recv(h[:], syscall.MSG_PEEK)
		if err != nil || n < wire.HeaderLen || streamOf(h[:]) != stream {
			return false // nothing queued (the worker has it), or the request ahead is
		}
	}
	for {
		// Taken, not peeked: what we hold now is ours to judge.
		n, err := q.recv(h[:], 0)
		if err != nil {
			return false // the worker took it meanwhile
		}
		if n >= wire.HeaderLen && streamOf(h[:]) == stream {
			return true
		}
		if !drain {
			return false // cannot happen: nothing is queued behind it
		}
	}
}

// recv reads the oldest message without blocking; a message longer than
// b is cut to it (MSG_TRUNC: the rest is discarded).
func (q *nextQueue) recv(b []byte, flags int) (int, error) {
	for {
		n, _, err := syscall.Recvfrom(int(q.take.Fd()), b, syscall.MSG_DONTWAIT|syscall.MSG_TRUNC|flags)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// streamOf is the stream of the frame whose header h is.
func streamOf(h []byte) uint32 { return binary.LittleEndian.Uint32(h[1:5]) }

func (q *nextQueue) close() {
	if q != nil {
		q.send.Close()
		q.take.Close()
	}
}

// pipelineTarget returns a busy worker the request can be queued behind,
// or nil. mu held.
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

// patience is how long a pipelined request waits for its turn before it
// takes itself back. mu held.
func (a *arbiter) patience() time.Duration {
	if a.pipeMaxAge > 0 {
		return a.pipeMaxAge // tests: as long as the age limit
	}
	return min(max(2*a.svcTime, pipelineMinPatience), pipelineMaxPatience)
}

// canPipeline reports whether a request may be queued behind w's current
// one, now. mu held.
func (a *arbiter) canPipeline(w *worker, now time.Time, limit time.Duration) bool {
	if w.state != Busy || w.next == nil || w.behind != nil || w.inflight != 1 || w.timedOut.Load() || w.sending.Load() {
		return false
	}
	if w.gen.app.NoPipeline {
		return false // `pipeline off;`
	}
	if now.Sub(w.leasedAt) >= limit {
		return false
	}
	_, hit := a.limitHit(w, w.requests+1, now) // the current request's release counts it
	return !hit
}

// leaseBehind queues wt's request to w, behind its current one, and
// leases w to it; false if the message could not be queued. The message
// is written here, under mu, so it is with the worker at once, whenever
// the request's own goroutine gets to run on a busy machine.
func (a *arbiter) leaseBehind(w *worker, wt *waiter) bool {
	stream := w.nextStream()
	setStream(wt.msg, stream)
	if err := w.next.push(wt.msg); err != nil {
		a.log.Warn("pipelining", zap.String("app", a.name), zap.Int("worker", w.id), zap.Error(err))
		return false
	}
	w.behind = wt
	w.inflight++
	wt.stream = stream
	wt.patience = a.patience()
	wt.reply <- grant{w: w, behind: true}
	return true
}

// setStream numbers every frame of msg with stream.
func setStream(msg []byte, stream uint32) {
	for off := 0; off+wire.HeaderLen <= len(msg); {
		binary.LittleEndian.PutUint32(msg[off+1:], stream)
		off += wire.HeaderLen + int(binary.LittleEndian.Uint32(msg[off+5:]))
	}
}

// passTurn runs when w's current request is released with out: the
// request behind it gets its turn, told whether the request ahead failed
// (see above). mu held.
func (a *arbiter) passTurn(w *worker, out outcome, now time.Time) {
	b := w.behind
	w.behind = nil
	w.leasedAt = now
	b.reply <- grant{w: w, failedAhead: out != outcomeOK}
}

// pipelineQueued queues the oldest queued request behind w's current
// one, if it may be. mu held.
func (a *arbiter) pipelineQueued(w *worker, now time.Time) {
	e := a.disp.queue.Front()
	if e == nil || e.Value.(*waiter).msg == nil {
		return // nobody waits, or the oldest cannot be pipelined (yet)
	}
	if limit, ok := a.pipeAge(); ok && a.canPipeline(w, now, limit) && a.leaseBehind(w, e.Value.(*waiter)) {
		a.disp.dequeue()
	}
}

// pipelineHead queues the oldest queued request to the best busy worker,
// if it may be. mu held.
func (a *arbiter) pipelineHead(now time.Time) {
	if e := a.disp.queue.Front(); e == nil || e.Value.(*waiter).msg == nil {
		return // before scanning the workers: the common case for a new waiter
	}
	if w := a.pipelineTarget(now); w != nil {
		a.pipelineQueued(w, now)
	}
}

// pipelineNext queues the oldest queued request behind w, whose latest
// request is now all written, if it may be.
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
