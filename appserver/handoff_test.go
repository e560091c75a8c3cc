package appserver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
)

// The hand-off fast path (handoff.go) runs on request goroutines next to
// a running arbiter, so these tests use a live arbiter goroutine over the
// fake launcher, and are meant for -race.

// livePool starts an arbiter goroutine with fake workers and returns a
// Pool that serves from it once the first generation is ready.
func livePool(t *testing.T, app *conf.App) (*Pool, *fakeLauncher) {
	t.Helper()
	checked, err := checkApps([]*conf.App{app})
	if err != nil {
		t.Fatal(err)
	}
	app = checked[0]
	var mu sync.Mutex
	var gens []*fakeLauncher
	a := newArbiter("fake", zap.NewNop(), func(gen int, app *conf.App) launcher {
		l := &fakeLauncher{procs: make(map[int]*fakeProc)}
		mu.Lock()
		gens = append(gens, l)
		mu.Unlock()
		return l
	})
	a.memory = func(int) (int64, error) { return 0, nil }
	p := &Pool{name: "fake", first: app, log: zap.NewNop(), a: a}
	p.running.Store(true)
	go a.run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.generation(ctx, app); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	return p, gens[0]
}

// waitLocked polls cond (under the arbiter's lock) until it holds.
func waitLocked(t *testing.T, p *Pool, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		p.a.mu.Lock()
		ok := cond()
		p.a.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHandoff_ConcurrentExclusive: many requests over few workers, all
// through the fast path. A worker is never held by two requests at once,
// none is lost, and every request is counted (max_requests depends on it).
func TestHandoff_ConcurrentExclusive(t *testing.T) {
	app := fakeApp(3)
	app.Queue = 1000
	p, _ := livePool(t, app)
	const clients, rounds = 40, 200
	holders := make(map[*worker]*atomic.Int32)
	p.a.mu.Lock()
	for _, w := range p.a.workers {
		holders[w] = new(atomic.Int32)
	}
	p.a.mu.Unlock()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				w, _, err := p.acquire(context.Background(), acquireQueue, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if n := holders[w].Add(1); n != 1 {
					t.Errorf("worker %d held by %d requests at once", w.id, n)
				}
				holders[w].Add(-1)
				p.release(w, outcomeOK)
			}
		}()
	}
	wg.Wait()
	s := p.Stats()
	if s.Idle != 3 || s.Busy != 0 || s.Queued != 0 {
		t.Fatalf("after the load: %+v, want 3 idle", s)
	}
	total := 0
	p.a.mu.Lock()
	for _, w := range p.a.workers {
		total += w.requests
	}
	p.a.mu.Unlock()
	if total != clients*rounds {
		t.Fatalf("%d requests counted, want %d", total, clients*rounds)
	}
}

// TestHandoff_FIFO: a released worker goes straight to the oldest waiter,
// in arrival order, without the arbiter in between.
func TestHandoff_FIFO(t *testing.T) {
	app := fakeApp(1)
	app.Queue = 16
	p, _ := livePool(t, app)
	held, _, err := p.acquire(context.Background(), acquireQueue, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	order := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			w, _, err := p.acquire(context.Background(), acquireQueue, nil)
			if err != nil {
				t.Error(err)
				order <- -1
				return
			}
			order <- i
			p.release(w, outcomeOK)
		}()
		waitLocked(t, p, "the waiter to queue", func() bool { return p.a.disp.queued() == i+1 })
	}
	p.release(held, outcomeOK)
	for want := 0; want < n; want++ {
		if got := <-order; got != want {
			t.Fatalf("waiter %d served in place %d", got, want)
		}
	}
}

// TestHandoff_DrainingNotHandedOff: a worker the supervisor marked
// Draining while busy is not given to the waiting request on release; it
// is retired (SIGTERM), and the waiter is served by its replacement.
func TestHandoff_DrainingNotHandedOff(t *testing.T) {
	p, l := livePool(t, fakeApp(1))
	w, _, err := p.acquire(context.Background(), acquireQueue, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *worker, 1)
	go func() {
		w2, _, err := p.acquire(context.Background(), acquireQueue, nil)
		if err != nil {
			t.Error(err)
		}
		got <- w2
	}()
	waitLocked(t, p, "the waiter to queue", func() bool { return p.a.disp.queued() == 1 })
	p.a.mu.Lock()
	p.a.retire(w, Reload, p.a.now()) // as a reload or recycling would
	p.a.mu.Unlock()
	p.release(w, outcomeOK)
	w2 := <-got
	if w2 == nil || w2 == w {
		t.Fatalf("waiter got %v; the draining worker must not be handed off", w2)
	}
	if !hasSignal(l.proc(w.id).signals(), syscall.SIGTERM) {
		t.Fatal("draining worker not terminated at release")
	}
	p.release(w2, outcomeOK)
}

// TestHandoff_SlowPathCases: the fast path gives back only what needs no
// decision; everything else goes to the arbiter.
func TestHandoff_SlowPathCases(t *testing.T) {
	app := fakeApp(1)
	app.MaxRequests = 2
	r := newRig(t, app)
	r.boot()
	w := r.mustAcquire()
	now := r.now
	if !r.a.reusable(w, outcomeOK, now) {
		t.Fatal("clean release of a busy worker under its limits is not fast")
	}
	for _, out := range []outcome{outcomeTimeout, outcomeCrash, outcomeProtocol} {
		if r.a.reusable(w, out, now) {
			t.Fatalf("outcome %d taken by the fast path", out)
		}
	}
	w.requests = 1 // this release reaches max_requests (no jitter)
	if r.a.reusable(w, outcomeOK, now) {
		t.Fatal("release reaching max_requests taken by the fast path")
	}
	w.requests = 0
	w.timedOut.Store(true)
	if r.a.reusable(w, outcomeOK, now) {
		t.Fatal("timed-out worker taken by the fast path")
	}
	w.timedOut.Store(false)
	r.a.stopping = true
	if r.a.reusable(w, outcomeOK, now) {
		t.Fatal("release during shutdown taken by the fast path")
	}
}

// TestHandoff_CancelWhileQueued: a request that gives up while queued
// leaves the queue at once, and the worker stays in service.
func TestHandoff_CancelWhileQueued(t *testing.T) {
	p, _ := livePool(t, fakeApp(1))
	w, _, err := p.acquire(context.Background(), acquireQueue, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := p.acquire(ctx, acquireQueue, nil)
		errc <- err
	}()
	waitLocked(t, p, "the waiter to queue", func() bool { return p.a.disp.queued() == 1 })
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("cancelled acquire: %v", err)
	}
	if s := p.Stats(); s.Queued != 0 {
		t.Fatalf("cancelled waiter still queued: %+v", s)
	}
	p.release(w, outcomeOK)
	if s := p.Stats(); s.Idle != 1 {
		t.Fatalf("worker not idle after release: %+v", s)
	}
}

// TestHandoff_QueueTimeoutStillFires: a waiter queued by the fast path
// still times out: it wakes the arbiter, which arms its deadline timer.
func TestHandoff_QueueTimeoutStillFires(t *testing.T) {
	app := fakeApp(1)
	app.QueueTimeout = 50 * time.Millisecond
	p, _ := livePool(t, app)
	w, _, err := p.acquire(context.Background(), acquireQueue, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.release(w, outcomeOK)
	start := time.Now()
	if _, _, err := p.acquire(context.Background(), acquireQueue, nil); err != ErrQueueTimeout {
		t.Fatalf("queued acquire: %v, want ErrQueueTimeout", err)
	}
	if d := time.Since(start); d > tickEvery {
		t.Fatalf("queue timeout of 50ms fired after %v (tick, not timer)", d)
	}
}

// TestHandoff_CountsQueuedRequests: Manager.Waits (the processor
// governor's "workers are the bottleneck" signal) counts every request
// that asked for a worker, and those that had to queue for one; release
// says when it handed the worker straight to a queued request.
func TestHandoff_CountsQueuedRequests(t *testing.T) {
	app := fakeApp(1)
	app.Queue = 4
	p, _ := livePool(t, app)
	m := &Manager{pools: map[string]*Pool{"fake": p}}

	held, _, err := p.acquire(context.Background(), acquireQueue, nil)
	if err != nil {
		t.Fatal(err)
	}
	if asked, queued := m.Waits(); asked != 1 || queued != 0 {
		t.Fatalf("after one request on an idle worker: Waits() = %d, %d; want 1, 0", asked, queued)
	}
	got := make(chan error, 1)
	go func() {
		w, _, err := p.acquire(context.Background(), acquireQueue, nil)
		if err == nil && p.release(w, outcomeOK) {
			err = errors.New("release with nobody queued reported a hand-off")
		}
		got <- err
	}()
	waitLocked(t, p, "the second request to queue", func() bool { return p.a.disp.queued() == 1 })
	if !p.release(held, outcomeOK) {
		t.Error("release with a request queued did not report the hand-off")
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if asked, queued := m.Waits(); asked != 2 || queued != 1 {
		t.Fatalf("after a request that queued: Waits() = %d, %d; want 2, 1", asked, queued)
	}
}
