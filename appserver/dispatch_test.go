package appserver

import (
	"testing"
	"time"
)

// TestDispatcher_FIFO: waiters are served in arrival order.
func TestDispatcher_FIFO(t *testing.T) {
	var d dispatcher
	d.init(10, time.Second)
	now := time.Unix(0, 0)
	ws := []*waiter{newWaiter(), newWaiter(), newWaiter()}
	for _, wt := range ws {
		if !d.enqueue(wt, now) {
			t.Fatal("enqueue refused")
		}
	}
	d.remove(ws[1]) // the middle one gave up
	if got := d.dequeue(); got != ws[0] {
		t.Fatal("first waiter not served first")
	}
	if got := d.dequeue(); got != ws[2] {
		t.Fatal("withdrawn waiter served, or order lost")
	}
	if d.dequeue() != nil || d.queued() != 0 {
		t.Fatal("queue not empty")
	}
}

// TestDispatcher_Bounded: past `queue N` waiters, requests are refused at
// once (503) instead of piling up.
func TestDispatcher_Bounded(t *testing.T) {
	var d dispatcher
	d.init(2, time.Second)
	now := time.Unix(0, 0)
	if !d.enqueue(newWaiter(), now) || !d.enqueue(newWaiter(), now) {
		t.Fatal("queue refused below its limit")
	}
	if d.enqueue(newWaiter(), now) {
		t.Fatal("queue accepted past its limit")
	}
}

// TestDispatcher_Timeout: waiters past the queue timeout expire, oldest
// first, and the next deadline is the oldest remaining waiter's.
func TestDispatcher_Timeout(t *testing.T) {
	var d dispatcher
	d.init(10, time.Second)
	t0 := time.Unix(0, 0)
	a, b := newWaiter(), newWaiter()
	d.enqueue(a, t0)
	d.enqueue(b, t0.Add(500*time.Millisecond))
	if dl, _ := d.nextDeadline(); !dl.Equal(t0.Add(time.Second)) {
		t.Fatalf("next deadline %v", dl)
	}
	if got := d.expire(t0.Add(999 * time.Millisecond)); len(got) != 0 {
		t.Fatal("expired early")
	}
	if got := d.expire(t0.Add(time.Second)); len(got) != 1 || got[0] != a {
		t.Fatalf("expired %v, want only the oldest", got)
	}
	if got := d.expire(t0.Add(2 * time.Second)); len(got) != 1 || got[0] != b {
		t.Fatal("second waiter did not expire")
	}
}

// TestDispatcher_IdleLIFO: the most recently idle worker is reused first;
// the longest idle one stays at the bottom for idle shrinking.
func TestDispatcher_IdleLIFO(t *testing.T) {
	var d dispatcher
	d.init(1, time.Second)
	w1, w2, w3 := &worker{id: 1}, &worker{id: 2}, &worker{id: 3}
	d.pushIdle(w1)
	d.pushIdle(w2)
	d.pushIdle(w3)
	if !d.removeIdle(w2) || d.removeIdle(w2) {
		t.Fatal("removeIdle")
	}
	if d.popIdle() != w3 || d.popIdle() != w1 || d.popIdle() != nil {
		t.Fatal("idle list not LIFO")
	}
}

// TestArbiter_QueueThenServe: with every worker busy a request waits; the
// first release hands the worker to the oldest waiter; past the queue size
// requests get ErrQueueFull; past the timeout ErrQueueTimeout.
func TestArbiter_QueueThenServe(t *testing.T) {
	r := newRig(t, fakeApp(1))
	r.boot()
	w := r.mustAcquire()
	var waiters []*waiter
	for i := 0; i < 4; i++ {
		wt, got, err := r.acquire()
		if got != nil || err != nil {
			t.Fatalf("request %d not queued: %v %v", i, got, err)
		}
		waiters = append(waiters, wt)
	}
	if _, _, err := r.acquire(); err != ErrQueueFull {
		t.Fatalf("5th waiter: %v, want ErrQueueFull", err)
	}
	r.do(releaseEv{w: w, out: outcomeOK})
	select {
	case g := <-waiters[0].reply:
		if g.w != w {
			t.Fatalf("oldest waiter got %+v", g)
		}
	default:
		t.Fatal("oldest waiter not served on release")
	}
	r.now = r.now.Add(2 * time.Second)
	r.a.maintain(r.now, false)
	for _, wt := range waiters[1:] {
		if g := <-wt.reply; g.err != ErrQueueTimeout {
			t.Fatalf("waiter: %+v, want ErrQueueTimeout", g)
		}
	}
}

// TestArbiter_CancelledWaiterLeavesQueue: a client that goes away while
// queued is removed and told so; a grant that raced with it stays in the
// channel for the caller to give back.
func TestArbiter_CancelledWaiterLeavesQueue(t *testing.T) {
	r := newRig(t, fakeApp(1))
	r.boot()
	w := r.mustAcquire()
	wt, _, _ := r.acquire()
	r.do(cancelEv{wt: wt})
	if g := <-wt.reply; g.err == nil {
		t.Fatal("cancelled waiter got a worker")
	}
	if r.a.disp.queued() != 0 {
		t.Fatal("cancelled waiter still queued")
	}
	r.do(releaseEv{w: w, out: outcomeOK})
	if w.state != Idle {
		t.Fatalf("worker %s after release with nobody waiting", w.state)
	}
}
