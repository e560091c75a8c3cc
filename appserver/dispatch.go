package appserver

import (
	"container/list"
	"errors"
	"sync/atomic"
	"time"
)

// Dispatch errors. Serve maps all three to 503 with Retry-After.
var (
	// ErrQueueFull: no idle worker and `queue N` requests already waiting.
	ErrQueueFull = errors.New("app queue full")
	// ErrQueueTimeout: waited `queue … timeout` without a worker.
	ErrQueueTimeout = errors.New("timed out waiting for a free worker")
	// ErrUnavailable: the pool has no generation that can serve (booting,
	// failed to import, or shutting down).
	ErrUnavailable = errors.New("app unavailable")
)

// waiter is one request waiting for a worker. reply has room for one
// grant, so the arbiter never blocks on a request goroutine.
type waiter struct {
	reply    chan grant
	deadline time.Time
	elem     *list.Element // in the queue, or nil
	// msg is the request as one pipelining message (pipeline.go), built
	// while it waits in the queue; nil if it is not (yet) pipelined. Set
	// and read under mu. stream is the number it got when queued to a
	// worker.
	msg    []byte
	stream uint32
	// front: the request was dispatched before, to a worker that failed
	// before reading it, so it goes first.
	front bool
	// patience: how long a pipelined request waits for its turn before
	// it takes itself back (set with the lease).
	patience time.Duration
}

// grant answers a waiter: a leased worker or an error. A pipelined
// request gets two: the worker with behind set, then its turn (w again,
// with failedAhead set if the request ahead broke the worker).
type grant struct {
	w      *worker
	err    error
	behind bool
	// failedAhead: the turn comes after the request ahead failed; the
	// request behind takes itself back if the worker did not (pipeline.go).
	failedAhead bool
}

func newWaiter() *waiter { return &waiter{reply: make(chan grant, 2)} }

// dispatcher is the idle list and the bounded FIFO queue of one pool. It is
// plain data owned by the arbiter goroutine (no locks, no goroutines), so
// its rules are unit-tested without processes:
//   - a request takes an idle worker if there is one, else waits in FIFO
//     order, so a request never waits behind a slow one while a worker is
//     free, and earlier requests are served first;
//   - at most limit requests wait; more get ErrQueueFull at once;
//   - a waiter older than timeout gets ErrQueueTimeout.
//
// The idle list is LIFO: the most recently used worker is reused first,
// which keeps its caches warm and lets the rest stay idle long enough for
// idle shrinking to notice them.
//
// A generation of command workers, each serving many requests at once,
// uses ready instead of idle: every worker dispatch may pick, busy or not;
// a request goes to the one with the fewest requests in flight, ties in
// round-robin order, and waits in the queue only when none is ready.
type dispatcher struct {
	idle    []*worker
	queue   list.List // of *waiter, oldest first
	limit   int
	timeout time.Duration
	// waiting mirrors queue.Len() for readers without mu (pipelineNext).
	waiting atomic.Int32

	ready []*worker // command workers that may take requests, in the order they became ready
	next  int       // round-robin cursor into ready
}

func (d *dispatcher) init(limit int, timeout time.Duration) {
	d.queue.Init()
	d.limit, d.timeout = limit, timeout
}

// pushIdle puts w on the idle list.
func (d *dispatcher) pushIdle(w *worker) { d.idle = append(d.idle, w) }

// popIdle takes the most recently idle worker, or nil.
func (d *dispatcher) popIdle() *worker {
	n := len(d.idle)
	if n == 0 {
		return nil
	}
	w := d.idle[n-1]
	d.idle[n-1] = nil
	d.idle = d.idle[:n-1]
	return w
}

// removeIdle takes w off the idle list; false if it was not there.
func (d *dispatcher) removeIdle(w *worker) bool {
	for i, x := range d.idle {
		if x == w {
			copy(d.idle[i:], d.idle[i+1:])
			d.idle[len(d.idle)-1] = nil
			d.idle = d.idle[:len(d.idle)-1]
			return true
		}
	}
	return false
}

// addReady makes command worker w available to leastLoaded.
func (d *dispatcher) addReady(w *worker) { d.ready = append(d.ready, w) }

// removeReady takes w off the ready list; false if it was not there.
func (d *dispatcher) removeReady(w *worker) bool {
	for i, x := range d.ready {
		if x == w {
			copy(d.ready[i:], d.ready[i+1:])
			d.ready[len(d.ready)-1] = nil
			d.ready = d.ready[:len(d.ready)-1]
			if d.next > i {
				d.next-- // keep pointing at the same successor
			}
			return true
		}
	}
	return false
}

// leastLoaded returns the ready worker with the fewest requests in flight,
// or nil. Among equals it takes the first at or after the round-robin
// cursor, and moves the cursor past it, so equal workers take turns. It
// does not lease: the caller does, which changes the count.
func (d *dispatcher) leastLoaded() *worker {
	n := len(d.ready)
	if n == 0 {
		return nil
	}
	if d.next >= n {
		d.next = 0
	}
	best := -1
	for i := 0; i < n; i++ {
		j := d.next + i
		if j >= n {
			j -= n
		}
		if best < 0 || d.ready[j].inflight < d.ready[best].inflight {
			best = j
			if d.ready[j].inflight == 0 {
				break // nothing beats an idle worker
			}
		}
	}
	d.next = best + 1
	return d.ready[best]
}

// enqueue appends wt to the queue; false when the queue is full.
func (d *dispatcher) enqueue(wt *waiter, now time.Time) bool {
	if d.queue.Len() >= d.limit {
		return false
	}
	wt.deadline = now.Add(d.timeout)
	if wt.front {
		// First in line; its deadline is the front's, so deadlines stay in
		// queue order (expire relies on it). It is served at the next
		// release anyway.
		if e := d.queue.Front(); e != nil {
			wt.deadline = e.Value.(*waiter).deadline
		}
		wt.elem = d.queue.PushFront(wt)
		d.waiting.Add(1)
		return true
	}
	wt.elem = d.queue.PushBack(wt)
	d.waiting.Add(1)
	return true
}

// dequeue removes and returns the oldest waiter, or nil.
func (d *dispatcher) dequeue() *waiter {
	e := d.queue.Front()
	if e == nil {
		return nil
	}
	return d.remove(e.Value.(*waiter))
}

// remove takes wt out of the queue (it gave up); nil if it was not queued.
func (d *dispatcher) remove(wt *waiter) *waiter {
	if wt.elem == nil {
		return nil
	}
	d.queue.Remove(wt.elem)
	wt.elem = nil
	d.waiting.Add(-1)
	return wt
}

// expire removes and returns the waiters whose deadline has passed. The
// queue is FIFO with one timeout, so they are all at the front.
func (d *dispatcher) expire(now time.Time) []*waiter {
	var out []*waiter
	for e := d.queue.Front(); e != nil; e = d.queue.Front() {
		wt := e.Value.(*waiter)
		if now.Before(wt.deadline) {
			break
		}
		out = append(out, d.remove(wt))
	}
	return out
}

// nextDeadline is when the oldest waiter times out.
func (d *dispatcher) nextDeadline() (time.Time, bool) {
	e := d.queue.Front()
	if e == nil {
		return time.Time{}, false
	}
	return e.Value.(*waiter).deadline, true
}

// queued is the number of waiting requests.
func (d *dispatcher) queued() int { return d.queue.Len() }
