package appserver

import (
	"syscall"
	"testing"
	"time"
)

// TestSupervise_CrashRespawnsAtOnceThenBacksOff: a single crash is
// replaced immediately (kill -9 must not cost capacity); repeated crashes
// back off exponentially and are reported.
func TestSupervise_CrashRespawnsAtOnceThenBacksOff(t *testing.T) {
	r := newRig(t, fakeApp(2))
	r.boot()
	victim := r.a.disp.idle[0]
	r.exit(victim, exitStatus{Code: -1, Signal: syscall.SIGKILL})
	if r.a.spawning != 1 {
		t.Fatalf("%d spawns after the first crash, want 1 at once", r.a.spawning)
	}
	r.drainSpawns()
	// Second crash within the window: 100 ms backoff, then 200 ms.
	for i, delay := range []time.Duration{backoffBase, 2 * backoffBase} {
		r.exit(r.a.disp.idle[0], exitStatus{Code: 1})
		if r.a.spawning != 0 {
			t.Fatalf("crash %d: respawned without backoff", i+2)
		}
		r.tick(delay - time.Millisecond)
		if r.a.spawning != 0 {
			t.Fatalf("crash %d: respawned before %v", i+2, delay)
		}
		r.tick(time.Millisecond)
		if r.a.spawning != 1 {
			t.Fatalf("crash %d: no respawn after %v", i+2, delay)
		}
		r.drainSpawns()
	}
	if r.logs.FilterMessageSnippet("crash-looping").Len() == 0 {
		t.Fatal("crash loop not reported")
	}
	if n := r.exits(Crash); n != 3 {
		t.Fatalf("%d crash exits logged, want 3", n)
	}
	// Crashes far apart start a new streak: immediate respawn again.
	r.tick(crashWindow + time.Second)
	r.exit(r.a.disp.idle[0], exitStatus{Code: 1})
	if r.a.spawning != 1 {
		t.Fatal("isolated crash after a quiet period was not respawned at once")
	}
}

// TestSupervise_MaxRequestsWithJitter: each worker draws max_requests +
// [0, jitter], and is retired (reason MaxRequests) on the release that
// reaches it, then replaced.
func TestSupervise_MaxRequestsWithJitter(t *testing.T) {
	app := fakeApp(3)
	app.MaxRequests, app.MaxRequestsJitter = 10, 5
	r := newRig(t, app)
	r.boot()
	seen := map[int]bool{}
	for _, w := range r.a.workers {
		if w.maxRequests < 10 || w.maxRequests > 15 {
			t.Fatalf("worker %d max_requests %d outside [10, 15]", w.id, w.maxRequests)
		}
		seen[w.maxRequests] = true
	}
	w := r.a.disp.idle[len(r.a.disp.idle)-1] // LIFO: the one acquire returns
	limit := w.maxRequests
	for i := 1; i <= limit; i++ {
		got := r.mustAcquire()
		if got != w {
			t.Fatalf("request %d went to worker %d", i, got.id)
		}
		r.do(releaseEv{w: got, out: outcomeOK})
		if i < limit && w.state != Idle {
			t.Fatalf("retired after %d of %d requests", i, limit)
		}
	}
	if w.state != Draining || w.reason != MaxRequests || !hasSignal(r.proc(w).signals(), syscall.SIGTERM) {
		t.Fatalf("after %d requests: %s, reason %s, signals %v", limit, w.state, w.reason, r.proc(w).signals())
	}
	r.awaitExit(w)
	r.drainSpawns()
	if r.exits(MaxRequests) != 1 || r.count(Idle) != 3 {
		t.Fatalf("exit not logged (%d) or not replaced (%d idle)", r.exits(MaxRequests), r.count(Idle))
	}
}

// TestSupervise_OneRecyclingAtATime: when every worker passes max_lifetime
// at once, they are recycled one by one: a recycle starts only when no
// other recycled worker is still around and no replacement is starting.
func TestSupervise_OneRecyclingAtATime(t *testing.T) {
	app := fakeApp(3)
	app.MaxLifetime = time.Minute
	r := newRig(t, app)
	r.boot()
	originals := map[*worker]bool{}
	for _, w := range r.a.workers {
		originals[w] = true
	}
	r.now = r.now.Add(2 * time.Minute)
	for i := 0; i < 200 && len(originals) > 0; i++ {
		starting := r.count(Starting)
		recycling := 0
		for _, w := range r.a.workers {
			if w.recycling {
				recycling++
			}
		}
		r.tick(tickEvery)
		newly := 0
		for _, w := range r.a.workers {
			if w.recycling && w.state == Draining && !w.killAt.IsZero() && w.killAt.Sub(r.now) == w.gen.app.GracefulTimeout {
				newly++
			}
		}
		if newly > 0 && (recycling > 0 || starting > 0) {
			t.Fatalf("a recycle started while %d recycling and %d starting", recycling, starting)
		}
		if newly > 1 {
			t.Fatalf("%d recycles started at once", newly)
		}
		for _, w := range r.a.workers {
			if w.state == Draining && w.termSent {
				r.awaitExit(w)
			}
		}
		r.drainSpawns()
		for w := range originals {
			if w.state == Exited {
				delete(originals, w)
			}
		}
	}
	if len(originals) != 0 {
		t.Fatalf("%d original workers never recycled", len(originals))
	}
	if n := r.exits(Lifetime); n != 3 {
		t.Fatalf("%d lifetime exits logged, want 3", n)
	}
}

// TestSupervise_BusyWorkerRetiresAfterRequest: a limit reached while busy
// only marks the worker; it finishes its request and is retired on
// release, never killed mid-request.
func TestSupervise_BusyWorkerRetiresAfterRequest(t *testing.T) {
	app := fakeApp(1)
	app.MaxLifetime = time.Minute
	app.Timeout = time.Hour
	r := newRig(t, app)
	r.boot()
	w := r.mustAcquire()
	r.tick(2 * time.Minute)
	if w.state != Draining || len(r.proc(w).signals()) != 0 {
		t.Fatalf("busy worker: %s, signals %v; want Draining and untouched", w.state, r.proc(w).signals())
	}
	r.do(releaseEv{w: w, out: outcomeOK})
	if !hasSignal(r.proc(w).signals(), syscall.SIGTERM) {
		t.Fatal("no SIGTERM at release")
	}
	r.awaitExit(w)
	if r.exits(Lifetime) != 1 {
		t.Fatal("lifetime exit not logged")
	}
}

// TestSupervise_MemoryCeiling: a worker whose sampled RSS passes
// max_memory is recycled with reason MemoryCeiling.
func TestSupervise_MemoryCeiling(t *testing.T) {
	app := fakeApp(2)
	app.MaxMemory = 100 << 20
	r := newRig(t, app)
	r.boot()
	fat := r.a.disp.idle[0]
	r.a.memory = func(pid int) (int64, error) {
		if pid == fat.pid {
			return 200 << 20, nil
		}
		return 10 << 20, nil
	}
	r.tick(memEvery)
	if fat.state != Draining || fat.reason != MemoryCeiling || r.count(Draining) != 1 {
		t.Fatalf("fat worker %s reason %s; %d draining", fat.state, fat.reason, r.count(Draining))
	}
}

// TestSupervise_TimeoutEscalates: a timed-out request gets SIGUSR2 (the
// traceback) at once and SIGKILL killGrace later, never before; the exit
// is logged as a request timeout and the worker replaced.
func TestSupervise_TimeoutEscalates(t *testing.T) {
	r := newRig(t, fakeApp(1))
	r.boot()
	w := r.mustAcquire()
	r.do(releaseEv{w: w, out: outcomeTimeout})
	sigs := r.proc(w).signals()
	if len(sigs) != 1 || sigs[0] != syscall.SIGUSR2 || !w.timedOut.Load() {
		t.Fatalf("signals %v after timeout, want [SIGUSR2]", sigs)
	}
	if r.a.spawning != 1 {
		t.Fatal("replacement not started while the old worker dumps its traceback")
	}
	r.tick(killGrace - time.Millisecond)
	if hasSignal(r.proc(w).signals(), syscall.SIGKILL) {
		t.Fatal("SIGKILL before the grace for the traceback")
	}
	r.tick(time.Millisecond)
	if !hasSignal(r.proc(w).signals(), syscall.SIGKILL) {
		t.Fatal("no SIGKILL after the grace")
	}
	r.awaitExit(w)
	if r.exits(RequestTimeout) != 1 {
		t.Fatal("timeout exit not logged with its reason")
	}
}

// TestSupervise_BackstopTimeout: a request that Serve cannot time out
// itself (blocked on the client) is timed out by the arbiter's tick.
func TestSupervise_BackstopTimeout(t *testing.T) {
	r := newRig(t, fakeApp(1))
	r.boot()
	w := r.mustAcquire()
	r.tick(r.app.Timeout + backstopSlack + tickEvery)
	if !w.timedOut.Load() || !hasSignal(r.proc(w).signals(), syscall.SIGUSR2) {
		t.Fatal("arbiter did not time out a request stuck past timeout")
	}
}

// TestSupervise_CrashMidRequestWaitsForRelease: a busy worker that dies
// stays in the table until its request goroutine releases it (the
// connection is still in use), then it is logged and replaced.
func TestSupervise_CrashMidRequestWaitsForRelease(t *testing.T) {
	r := newRig(t, fakeApp(1))
	r.boot()
	w := r.mustAcquire()
	r.exit(w, exitStatus{Code: -1, Signal: syscall.SIGSEGV})
	if w.state != Draining || r.a.workers[w.id] == nil {
		t.Fatalf("busy worker after exit: %s", w.state)
	}
	r.do(releaseEv{w: w, out: outcomeCrash})
	if w.state != Exited || r.a.workers[w.id] != nil || r.exits(Crash) != 1 {
		t.Fatalf("after release: %s", w.state)
	}
	if r.a.spawning != 1 {
		t.Fatal("not replaced")
	}
}

// TestSupervise_ScaleAndAutoscale: SIGTTIN/SIGTTOU move the size within
// [min, max]; queue pressure adds a worker after scaleUpAfter, idleness
// removes it after idleShrinkAfter.
func TestSupervise_ScaleAndAutoscale(t *testing.T) {
	app := fakeApp(2)
	app.MinWorkers, app.MaxWorkers = 1, 3
	app.QueueTimeout = time.Hour
	r := newRig(t, app)
	r.boot()
	r.do(scaleEv{delta: +1})
	r.do(scaleEv{delta: +1}) // capped at 3
	if r.a.want != 3 || r.a.spawning != 1 {
		t.Fatalf("after 2×ScaleUp: want %d, spawning %d", r.a.want, r.a.spawning)
	}
	r.drainSpawns()
	r.do(scaleEv{delta: -1})
	r.do(scaleEv{delta: -1})
	r.do(scaleEv{delta: -1}) // floored at 1
	if r.a.want != 1 {
		t.Fatalf("want %d after 3×ScaleDown", r.a.want)
	}
	for r.count(Draining) > 0 {
		for _, w := range r.a.workers {
			if w.state == Draining {
				r.awaitExit(w)
			}
		}
	}
	if r.exits(ScaleDown) != 2 || len(r.a.workers) != 1 {
		t.Fatalf("%d scale-down exits, %d workers", r.exits(ScaleDown), len(r.a.workers))
	}
	// Queue pressure.
	w := r.mustAcquire()
	r.acquire() // queued
	r.tick(tickEvery)
	r.tick(scaleUpAfter)
	if r.a.want != 2 {
		t.Fatalf("want %d under queue pressure, want 2", r.a.want)
	}
	r.drainSpawns() // the new worker takes the queued request
	r.do(releaseEv{w: w, out: outcomeOK})
	for _, x := range r.a.workers {
		if x.state == Busy {
			r.do(releaseEv{w: x, out: outcomeOK})
		}
	}
	r.tick(idleShrinkAfter + time.Second)
	if r.a.want != 1 {
		t.Fatalf("want %d after a long idle period, want 1", r.a.want)
	}

	// A signal moves the pool from its autoscaled size: grown to 2 by
	// queue pressure, SIGTTOU brings it to 1 (not "at the bound"), and
	// SIGTTIN's worker is not taken back by idle shrinking.
	r.mustAcquire()
	r.acquire()
	r.tick(tickEvery)
	r.tick(scaleUpAfter)
	if r.a.want != 2 || r.a.base != 1 {
		t.Fatalf("want %d base %d under queue pressure, want 2 and 1", r.a.want, r.a.base)
	}
	r.do(scaleEv{delta: -1})
	if r.a.want != 1 || r.a.base != 1 {
		t.Fatalf("SIGTTOU on an autoscaled pool: want %d base %d, want 1 and 1", r.a.want, r.a.base)
	}
	r.do(scaleEv{delta: +1})
	if r.a.want != 2 || r.a.base != 2 {
		t.Fatalf("SIGTTIN: want %d base %d, want 2 and 2", r.a.want, r.a.base)
	}
}

// TestGeneration_FailedBootKeepsServing: a reload whose import fails is
// reported to the caller and the serving generation is untouched.
func TestGeneration_FailedBootKeepsServing(t *testing.T) {
	r := newRig(t, fakeApp(2))
	r.boot()
	before := len(r.a.workers)
	reply := make(chan error, 1)
	r.bootErr = &BootError{App: "fake", Traceback: "SyntaxError"}
	r.do(startGenEv{app: r.app, reply: reply})
	r.step()
	if err := <-reply; err == nil {
		t.Fatal("reload succeeded")
	}
	if r.a.cur.id != 1 || r.a.pending != nil || len(r.a.workers) != before || len(r.a.disp.idle) != before {
		t.Fatal("serving generation disturbed by a failed reload")
	}
}

// TestGeneration_SwitchWhenReady: dispatch keeps using the old generation
// until every new worker is ready; then old idle workers exit (Reload) and
// busy ones finish first.
func TestGeneration_SwitchWhenReady(t *testing.T) {
	r := newRig(t, fakeApp(2))
	r.boot()
	busy := r.mustAcquire()
	reply := make(chan error, 1)
	r.do(startGenEv{app: r.app, reply: reply})
	r.step() // booted: spawns 2
	if r.a.cur.id != 1 {
		t.Fatal("switched before the new workers were ready")
	}
	r.drainSpawns()
	if err := <-reply; err != nil || r.a.cur.id != 2 {
		t.Fatalf("switch: %v, generation %d", err, r.a.cur.id)
	}
	if busy.state != Draining || len(r.proc(busy).signals()) != 0 {
		t.Fatal("busy old worker disturbed by the switch")
	}
	if got := r.mustAcquire(); got.gen.id != 2 {
		t.Fatal("dispatch still on the old generation")
	}
	r.do(releaseEv{w: busy, out: outcomeOK})
	r.awaitExit(busy)
	if r.exits(Reload) < 1 {
		t.Fatal("old worker exit not logged as reload")
	}
}
