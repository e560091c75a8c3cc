package appserver

import (
	"syscall"
	"testing"
	"time"

	"github.com/tandem-server/tandem/conf"
)

// Arbiter decisions for command workers (concurrent.go), with fakes.

func fakeCommandApp(workers int) *conf.App {
	app := fakeApp(workers)
	app.WSGI = ""
	app.Command = []string{"/bin/false", "--socket", "$TANDEM_SOCKET"}
	return app
}

// TestDispatch_LeastLoadedRoundRobin: a request goes to the ready worker
// with the fewest requests in flight; equal workers take turns, also
// after one leaves the list.
func TestDispatch_LeastLoadedRoundRobin(t *testing.T) {
	var d dispatcher
	d.init(4, time.Second)
	if d.leastLoaded() != nil {
		t.Fatal("empty ready list gave a worker")
	}
	w1, w2, w3 := &worker{id: 1}, &worker{id: 2}, &worker{id: 3}
	for _, w := range []*worker{w1, w2, w3} {
		d.addReady(w)
	}
	var order []int
	for i := 0; i < 6; i++ {
		order = append(order, d.leastLoaded().id) // nothing leased: all tie
	}
	if want := []int{1, 2, 3, 1, 2, 3}; !equalInts(order, want) {
		t.Fatalf("ties served %v, want round robin %v", order, want)
	}
	w1.inflight, w2.inflight, w3.inflight = 2, 1, 2
	if got := d.leastLoaded(); got != w2 {
		t.Fatalf("picked worker %d with %d in flight, want worker 2 with 1", got.id, got.inflight)
	}
	w2.inflight = 2
	order = order[:0]
	for i := 0; i < 3; i++ {
		order = append(order, d.leastLoaded().id)
	}
	if want := []int{3, 1, 2}; !equalInts(order, want) {
		t.Fatalf("ties after worker 2 served %v, want %v", order, want)
	}
	if !d.removeReady(w1) || d.removeReady(w1) {
		t.Fatal("removeReady")
	}
	order = order[:0]
	for i := 0; i < 4; i++ {
		order = append(order, d.leastLoaded().id)
	}
	if want := []int{3, 2, 3, 2}; !equalInts(order, want) {
		t.Fatalf("after removing worker 1: %v, want %v", order, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConcurrent_BusyWorkersTakeMore: command workers take requests while
// busy, spread evenly; nothing queues while a worker is ready, and a
// worker is Idle again only when its last request ends.
func TestConcurrent_BusyWorkersTakeMore(t *testing.T) {
	r := newRig(t, fakeCommandApp(2))
	r.boot()
	var got []*worker
	for i := 0; i < 5; i++ {
		got = append(got, r.mustAcquire())
	}
	if r.a.disp.queued() != 0 || r.count(Busy) != 2 {
		t.Fatalf("queued %d, busy %d: want 0 queued, both busy", r.a.disp.queued(), r.count(Busy))
	}
	a, b := got[0], got[1]
	if a == b || a.inflight+b.inflight != 5 || a.inflight-b.inflight > 1 || b.inflight-a.inflight > 1 {
		t.Fatalf("in flight %d and %d, want 3 and 2", a.inflight, b.inflight)
	}
	for _, w := range got {
		r.do(releaseEv{w: w, out: outcomeOK})
		if w.leased() && w.state != Busy {
			t.Fatalf("worker %d %s with %d in flight", w.id, w.state, w.inflight)
		}
	}
	if r.count(Idle) != 2 || a.requests+b.requests != 5 {
		t.Fatalf("after all releases: %d idle, %d requests", r.count(Idle), a.requests+b.requests)
	}
}

// TestConcurrent_QueueOnlyWhenNoneReady: with its only worker dead, a
// request waits in the queue and gets the replacement as soon as it is
// ready; it is not refused.
func TestConcurrent_QueueOnlyWhenNoneReady(t *testing.T) {
	r := newRig(t, fakeCommandApp(1))
	r.boot()
	w := r.a.disp.ready[0]
	r.exit(w, exitStatus{Code: -1, Signal: syscall.SIGKILL})
	wt, got, err := r.acquire()
	if got != nil || err != nil || r.a.disp.queued() != 1 {
		t.Fatalf("with no worker ready: %v, %v, queued %d; want queued", got, err, r.a.disp.queued())
	}
	r.drainSpawns()
	select {
	case g := <-wt.reply:
		if g.w == nil || g.w == w || g.w.inflight != 1 {
			t.Fatalf("queued request got %+v", g)
		}
	default:
		t.Fatal("queued request not served by the replacement")
	}
}

// TestConcurrent_LimitDrainsAfterLastRequest: a command worker reaching
// max_requests leaves dispatch at once but gets SIGTERM only when its
// last request in flight ends.
func TestConcurrent_LimitDrainsAfterLastRequest(t *testing.T) {
	app := fakeCommandApp(1)
	app.MaxRequests = 1
	r := newRig(t, app)
	r.boot()
	w := r.mustAcquire()
	r.mustAcquire()
	r.do(releaseEv{w: w, out: outcomeOK})
	if w.state != Draining || w.reason != MaxRequests || len(r.a.disp.ready) != 0 {
		t.Fatalf("after the first release: %s, reason %s, %d ready", w.state, w.reason, len(r.a.disp.ready))
	}
	if hasSignal(r.proc(w).signals(), syscall.SIGTERM) {
		t.Fatal("SIGTERM while a request was still in flight")
	}
	r.do(releaseEv{w: w, out: outcomeOK})
	if !hasSignal(r.proc(w).signals(), syscall.SIGTERM) {
		t.Fatal("no SIGTERM after the last request")
	}
	r.awaitExit(w)
	if n := r.exits(MaxRequests); n != 1 {
		t.Fatalf("%d max_requests exits logged", n)
	}
}

// TestConcurrent_SlowRequestDoesNotKill: a request on a command worker far
// past `timeout` is Serve's to answer (504); the supervisor never signals
// the worker, which serves other requests too.
func TestConcurrent_SlowRequestDoesNotKill(t *testing.T) {
	r := newRig(t, fakeCommandApp(1))
	r.boot()
	w := r.mustAcquire()
	for i := 0; i < 5; i++ {
		r.tick(r.app.Timeout)
	}
	if sigs := r.proc(w).signals(); len(sigs) != 0 || w.state != Busy {
		t.Fatalf("slow request: worker %s, signals %v", w.state, sigs)
	}
}

// TestConcurrent_DeathWithRequestsInFlight: a command worker that dies
// with requests in flight leaves dispatch at once (new requests go to
// the others), is replaced, and is logged once, as a crash, after its
// last request is given back.
func TestConcurrent_DeathWithRequestsInFlight(t *testing.T) {
	r := newRig(t, fakeCommandApp(2))
	r.boot()
	var victim *worker
	for victim == nil || victim.inflight < 2 {
		victim = r.mustAcquire()
	}
	r.exit(victim, exitStatus{Code: -1, Signal: syscall.SIGKILL})
	if victim.state != Draining || len(r.a.disp.ready) != 1 {
		t.Fatalf("dead worker %s, %d ready", victim.state, len(r.a.disp.ready))
	}
	for i := 0; i < 3; i++ {
		if w := r.mustAcquire(); w == victim {
			t.Fatal("request dispatched to a dead worker")
		}
	}
	n := victim.inflight
	for i := 0; i < n; i++ {
		if r.exits(Crash) != 0 {
			t.Fatal("exit logged while requests still held the worker")
		}
		r.do(releaseEv{w: victim, out: outcomeCrash})
	}
	if r.exits(Crash) != 1 || r.a.workers[victim.id] != nil {
		t.Fatalf("%d crash exits logged; still in table: %v", r.exits(Crash), r.a.workers[victim.id] != nil)
	}
	r.drainSpawns()
	if s := r.a.stats(); s.Idle+s.Busy != 2 {
		t.Fatalf("not replaced: %+v", s)
	}
}

// TestConcurrent_ScaleDownRetiresIdle: SIGTTOU retires the command worker
// idle longest, never one with requests in flight.
func TestConcurrent_ScaleDownRetiresIdle(t *testing.T) {
	app := fakeCommandApp(3)
	app.MinWorkers = 1
	r := newRig(t, app)
	r.boot()
	busy := r.mustAcquire()
	r.tick(time.Second)
	later := r.mustAcquire()
	r.do(releaseEv{w: later, out: outcomeOK}) // idle since now
	r.do(scaleEv{delta: -1})
	var gone *worker
	for _, w := range r.a.workers {
		if w.state == Draining {
			gone = w
		}
	}
	if gone == nil || gone == busy || gone == later || gone.reason != ScaleDown {
		t.Fatalf("scale-down retired %+v; busy %d, recently idle %d", gone, busy.id, later.id)
	}
}
