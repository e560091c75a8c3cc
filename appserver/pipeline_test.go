package appserver

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-server/tandem/appserver/wire"
)

// pipeRig is an arbiter rig whose app is fast (so pipelining is allowed)
// and whose workers have a pipelining queue.
func pipeRig(t *testing.T, workers int) *arbiterRig {
	r := newRig(t, fakeApp(workers))
	r.boot()
	r.a.svcTime = time.Millisecond
	for _, w := range r.a.workers {
		w.next, _ = testQueue(t)
	}
	return r
}

// testQueue is a pipelining queue and the worker's reading end.
func testQueue(t *testing.T) (*nextQueue, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	take, err := syscall.Dup(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	q := &nextQueue{send: os.NewFile(uintptr(fds[0]), "send"), take: os.NewFile(uintptr(take), "take")}
	theirs := os.NewFile(uintptr(fds[1]), "worker")
	t.Cleanup(func() { q.close(); theirs.Close() })
	return q, theirs
}

// busy leases a worker for a request whose frames are written.
func (r *arbiterRig) busy() *worker {
	r.t.Helper()
	w := r.mustAcquire()
	w.sending.Store(false)
	return w
}

// acquirePipelined asks for a worker for a small request; the grant, or
// ok false if it was queued.
func (r *arbiterRig) acquirePipelined() (*waiter, grant, bool) {
	wt := newWaiter()
	wt.msg = append(wire.AppendHeader(nil, wire.Head, 0, 0), wire.AppendHeader(nil, wire.End, 0, 0)...)
	r.do(acquireEv{wt: wt})
	select {
	case g := <-wt.reply:
		return wt, g, true
	default:
		return wt, grant{}, false
	}
}

// turn is the second grant of a pipelined waiter, if it came.
func turnOf(wt *waiter) (grant, bool) {
	select {
	case g := <-wt.reply:
		return g, true
	default:
		return grant{}, false
	}
}

// TestPipeline_BehindTheLongestRunning: with no worker idle and nobody
// queued, a small request goes behind the busy worker whose request has
// run longest, and gets its turn when that request is released.
func TestPipeline_BehindTheLongestRunning(t *testing.T) {
	r := pipeRig(t, 2)
	w1 := r.busy()
	r.now = r.now.Add(200 * time.Microsecond)
	w2 := r.busy()
	r.now = r.now.Add(200 * time.Microsecond)
	wt, g, ok := r.acquirePipelined()
	if !ok || !g.behind || g.w != w1 {
		t.Fatalf("grant %+v (answered %v), want behind worker %d", g, ok, w1.id)
	}
	if w1.behind != wt || w1.inflight != 2 || w2.behind != nil {
		t.Fatalf("worker 1: behind %v inflight %d", w1.behind == wt, w1.inflight)
	}
	if wt.stream == 0 || wt.stream != w1.stream.Load() {
		t.Fatalf("pipelined request numbered %d, worker at %d", wt.stream, w1.stream.Load())
	}
	if _, ok := turnOf(wt); ok {
		t.Fatal("turn before the request ahead was released")
	}
	r.now = r.now.Add(time.Millisecond)
	r.do(releaseEv{w: w1, out: outcomeOK})
	turn, ok := turnOf(wt)
	if !ok || turn.w != w1 || turn.err != nil || turn.failedAhead {
		t.Fatalf("turn %+v (came %v)", turn, ok)
	}
	if w1.state != Busy || w1.inflight != 1 || w1.behind != nil || !w1.leasedAt.Equal(r.now) {
		t.Fatalf("after the turn: %s, inflight %d, leased at %v", w1.state, w1.inflight, w1.leasedAt)
	}
	r.do(releaseEv{w: w1, out: outcomeOK})
	if w1.state != Idle || w1.requests != 2 {
		t.Fatalf("after both: %s, %d requests", w1.state, w1.requests)
	}
}

// TestPipeline_WhenNot: each rule that keeps a request in the queue.
func TestPipeline_WhenNot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(r *arbiterRig, w *worker)
	}{
		{"frames of the request ahead not yet written", func(r *arbiterRig, w *worker) { w.sending.Store(true) }},
		{"app too slow on average", func(r *arbiterRig, w *worker) { r.a.svcTime = pipelineSlowApp }},
		{"no request timed yet", func(r *arbiterRig, w *worker) { r.a.svcTime = 0 }},
		{"request ahead running for twice the average", func(r *arbiterRig, w *worker) { r.now = r.now.Add(2 * time.Millisecond) }},
		{"request ahead timed out", func(r *arbiterRig, w *worker) { w.timedOut.Store(true) }},
		{"worker without a queue", func(r *arbiterRig, w *worker) { w.next = nil }},
		{"pipeline off", func(r *arbiterRig, w *worker) {
			app := *w.gen.app
			app.NoPipeline = true
			w.gen.app = &app
		}},
		{"worker retires after the request ahead", func(r *arbiterRig, w *worker) { w.maxRequests = 1 }},
		{"one already behind", func(r *arbiterRig, w *worker) {
			if _, g, _ := r.acquirePipelined(); !g.behind {
				t.Fatal("first small request not pipelined")
			}
			w.sending.Store(false)
		}},
		{"an older request queued", func(r *arbiterRig, w *worker) {
			if _, got, _ := r.acquire(); got != nil {
				t.Fatal("plain request not queued")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pipeRig(t, 1)
			w := r.busy()
			tc.setup(r, w)
			queued := r.a.disp.queued()
			wt, g, ok := r.acquirePipelined()
			if ok {
				t.Fatalf("answered %+v, want queued", g)
			}
			if wt.elem == nil || r.a.disp.queued() != queued+1 {
				t.Fatal("not in the queue")
			}
		})
	}
	t.Run("request with a large body", func(t *testing.T) {
		r := pipeRig(t, 1)
		r.busy()
		if wt, w, _ := r.acquire(); w != nil || wt.elem == nil {
			t.Fatal("request that may not be pipelined was not queued")
		}
	})
}

// TestPipeline_QueuedRequestWhenFramesWritten: a small request queued
// while the worker's request was still being written goes behind it once
// it is written; a plain one stays queued.
func TestPipeline_QueuedRequestWhenFramesWritten(t *testing.T) {
	r := pipeRig(t, 1)
	w := r.mustAcquire() // still sending
	wt, _, ok := r.acquirePipelined()
	if ok {
		t.Fatal("pipelined while the request ahead was being written")
	}
	w.sending.Store(false)
	r.a.pipelineQueued(w, r.now)
	g, ok := turnOf(wt)
	if !ok || !g.behind || g.w != w || r.a.disp.queued() != 0 || w.behind != wt {
		t.Fatalf("grant %+v (came %v), queued %d", g, ok, r.a.disp.queued())
	}

	r2 := pipeRig(t, 1)
	w2 := r2.busy()
	plain, _, _ := r2.acquire()
	r2.a.pipelineQueued(w2, r2.now)
	if plain.elem == nil || w2.behind != nil {
		t.Fatal("a request that may not be pipelined left the queue")
	}
}

// TestPipeline_TurnPassesToQueue: when the turn passes, the oldest queued
// small request goes behind the new current one if its frames are
// written.
func TestPipeline_TurnPassesToQueue(t *testing.T) {
	r := pipeRig(t, 1)
	w := r.busy()
	first, _, _ := r.acquirePipelined()
	second, _, ok := r.acquirePipelined()
	if ok {
		t.Fatal("second small request not queued")
	}
	w.sending.Store(false) // first wrote its request
	r.do(releaseEv{w: w, out: outcomeOK})
	if g, ok := turnOf(first); !ok || g.w != w {
		t.Fatalf("first: turn %+v (came %v)", g, ok)
	}
	if g, ok := turnOf(second); !ok || !g.behind || g.w != w {
		t.Fatalf("second: %+v (came %v), want behind", g, ok)
	}
}

// TestPipeline_FailedAhead: when the request ahead breaks its worker
// (crash or timeout), the request behind gets its turn marked
// failedAhead, still holding the worker, so it can take itself back
// before the worker is gone.
func TestPipeline_FailedAhead(t *testing.T) {
	for _, out := range []outcome{outcomeCrash, outcomeTimeout, outcomeProtocol} {
		r := pipeRig(t, 1)
		w := r.busy()
		wt, _, _ := r.acquirePipelined()
		r.do(releaseEv{w: w, out: out})
		g, ok := turnOf(wt)
		if !ok || g.w != w || !g.failedAhead {
			t.Fatalf("outcome %d: turn %+v (came %v), want failedAhead", out, g, ok)
		}
		if w.inflight != 1 || w.state != Draining || w.termSent {
			t.Fatalf("outcome %d: worker %s, inflight %d, SIGTERM %v", out, w.state, w.inflight, w.termSent)
		}
		if out == outcomeTimeout && !hasSignal(r.proc(w).signals(), syscall.SIGUSR2) {
			t.Fatal("timed-out worker not sent SIGUSR2")
		}
		r.do(releaseEv{w: w, out: outcomeOK})
		if w.leased() {
			t.Fatalf("outcome %d: still leased after the request behind gave it back", out)
		}
	}
}

// TestNextQueue_TakeBack: a request takes back its own message if the
// worker has not read it, exactly once; not one the worker read; and not
// while the request ahead is still queued (unless draining a dying
// worker's queue).
func TestNextQueue_TakeBack(t *testing.T) {
	msg := func(stream uint32) []byte { return wire.AppendHeader(nil, wire.Head, stream, 0) }
	q, worker := testQueue(t)
	if err := q.push(msg(1)); err != nil {
		t.Fatal(err)
	}
	if q.takeBack(2, false) {
		t.Fatal("took back another request's message")
	}
	if !q.takeBack(1, false) || q.takeBack(1, false) {
		t.Fatal("unread message not taken back exactly once")
	}
	q.push(msg(2))
	buf := make([]byte, 64)
	n, err := worker.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], msg(2)) {
		t.Fatalf("worker read %q, %v", buf[:n], err)
	}
	if q.takeBack(2, false) {
		t.Fatal("took back a message the worker read")
	}
	q.push(msg(3)) // ahead, not yet read
	q.push(msg(4))
	if q.takeBack(4, false) {
		t.Fatal("took back a message queued behind an unread one")
	}
	if !q.takeBack(4, true) || q.takeBack(3, true) {
		t.Fatal("draining did not find the message behind, or left the one ahead")
	}
	if err := q.push(make([]byte, pipelineMaxMsg+1)); err == nil {
		t.Fatal("oversized message queued")
	}
}

// TestPipeline_RetryGoesFirst: a request dispatched again is served
// before the ones already queued, and queue deadlines stay in order.
func TestPipeline_RetryGoesFirst(t *testing.T) {
	var d dispatcher
	d.init(10, time.Second)
	now := time.Unix(1000, 0)
	a, b, c := newWaiter(), newWaiter(), newWaiter()
	d.enqueue(a, now)
	d.enqueue(b, now.Add(time.Millisecond))
	c.front = true
	d.enqueue(c, now.Add(2*time.Millisecond))
	if c.deadline != a.deadline {
		t.Fatalf("front deadline %v, want the old front's %v", c.deadline, a.deadline)
	}
	if d.dequeue() != c || d.dequeue() != a || d.dequeue() != b || d.waiting.Load() != 0 {
		t.Fatal("order not c, a, b")
	}
}
