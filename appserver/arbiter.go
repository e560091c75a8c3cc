package appserver

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/appserver/wire"
	"github.com/tandem-server/tandem/conf"
)

// outcome is how a request left its worker, reported at release.
type outcome uint8

const (
	outcomeOK       outcome = iota // worker is ready for the next request
	outcomeTimeout                 // request ran past `timeout`
	outcomeCrash                   // connection broke (EOF, reset): the worker died
	outcomeProtocol                // the worker sent something invalid
)

// Events the arbiter goroutine consumes. Process watchers and the Manager
// only ever talk to it through these; request goroutines too, except for
// the hand-off fast path (handoff.go), which runs acquire and the plain
// release under mu instead of sending acquireEv, cancelEv and releaseEv.
// Those events stay the arbiter's interface for the releases that need a
// decision, and for tests that drive the arbiter by hand.
type (
	acquireEv struct{ wt *waiter }
	cancelEv  struct{ wt *waiter }
	releaseEv struct {
		w   *worker
		out outcome
	}
	spawnedEv struct {
		w   *worker
		sp  spawned
		err error
	}
	exitedEv struct {
		w  *worker
		st exitStatus
	}
	bootedEv struct {
		g   *generation
		err error
	}
	startGenEv struct {
		app   *conf.App
		reply chan error
	}
	abandonGenEv struct{ reply chan error }
	scaleEv      struct{ delta int }
	shutdownEv   struct {
		deadline time.Time
		reply    chan error
	}
	statsEv struct{ reply chan Stats }
)

// Tuning of the supervisor that is not (yet) a directive.
const (
	tickEvery       = 200 * time.Millisecond // supervision tick
	killGrace       = 500 * time.Millisecond // SIGUSR2 (traceback) → SIGKILL
	crashGrace      = time.Second            // broken connection → SIGKILL if still alive
	backstopSlack   = time.Second            // arbiter enforces timeouts Serve could not
	memEvery        = time.Second            // RSS sampling period
	crashWindow     = 10 * time.Second       // crashes further apart reset the streak
	backoffBase     = 100 * time.Millisecond // second crash in a row waits this long
	backoffMax      = 10 * time.Second
	scaleUpAfter    = time.Second      // queue non-empty this long → one more worker
	idleShrinkAfter = 30 * time.Second // a worker idle this long → one fewer (down to `workers`)
)

// arbiter owns one pool's worker table. One goroutine (run) makes every
// decision about it; everything else sends events. The one exception is
// the hand-off fast path (handoff.go): a request goroutine may take an
// idle worker, join the queue, or give back a worker that needs no
// decision, itself, under mu. The arbiter holds mu for each whole turn, so
// every decision still sees a consistent table, and the fast path only
// makes the moves the arbiter would have made (Idle → Busy, Busy → Idle),
// through the same setState and the same transition table.
type arbiter struct {
	// mu guards the worker table, the dispatcher and every worker field
	// the arbiter owns (see worker). The arbiter holds it for each turn;
	// request goroutines hold it only inside handoff.go.
	mu sync.Mutex

	name   string
	log    *zap.Logger
	launch launchFunc
	now    func() time.Time
	memory func(pid int) (int64, error)
	rng    *rand.Rand

	events  chan any
	kick    chan struct{} // a fast-path change needs a turn (see handoff.go)
	timerAt time.Time     // when run's queue timer fires; zero when stopped
	done    chan struct{} // closed when run returns
	ctx     context.Context
	cancel  context.CancelFunc
	closers sync.WaitGroup // launcher.close calls in flight

	workers map[int]*worker
	// httpWorkers is set while the serving generation runs command
	// workers, so Serve streams the request to them over HTTP instead of
	// buffering it for the worker protocol. Written under mu, read
	// without it.
	httpWorkers  atomic.Bool
	nextID       int
	genSeq       int
	cur, pending *generation
	disp         dispatcher
	// want is the target worker count; base is what automatic shrinking
	// returns to (`workers`, moved by ScaleUp/ScaleDown).
	want, base int

	spawning, booting int // goroutines whose event has not arrived

	streak     int // crashes in a row (see crashed)
	lastCrash  time.Time
	spawnAfter time.Time // crash-loop backoff: no spawns before

	// Pipelining (pipeline.go): the average time a request holds its
	// worker, and the policy's limits (constants; tests change them).
	svcTime     time.Duration
	pipeSlowApp time.Duration // no pipelining when svcTime reaches this
	pipeMaxAge  time.Duration // behind a request at most this old; 0: 2 × svcTime

	queueSince time.Time // queue non-empty since
	lastScale  time.Time
	lastMem    time.Time

	stopping     bool
	stopDeadline time.Time
	stopReplies  []chan error
}

func newArbiter(name string, log *zap.Logger, launch launchFunc) *arbiter {
	ctx, cancel := context.WithCancel(context.Background())
	a := &arbiter{
		name: name, log: log, launch: launch,
		now:     time.Now,
		memory:  rssOf,
		rng:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		events:  make(chan any, 256),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		workers: make(map[int]*worker),

		pipeSlowApp: pipelineSlowApp,
	}
	a.disp.init(0, 0)
	return a
}

// send delivers ev unless the arbiter has stopped.
func (a *arbiter) send(ev any) bool {
	select {
	case <-a.done:
		return false // checked first: the buffered channel may have room
	default:
	}
	select {
	case a.events <- ev:
		return true
	case <-a.done:
		return false
	}
}

// run is the loop, gunicorn's arbiter run() in Go: wait for an event, a
// tick or the oldest queued request's deadline; handle it; then keep the
// pool in shape. Each turn holds mu (see arbiter).
func (a *arbiter) run() {
	defer close(a.done)
	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var ev any
		tick := false
		select {
		case ev = <-a.events:
		case <-a.kick:
		case <-ticker.C:
			tick = true
		case <-timer.C:
		}
		if a.turn(ev, tick, timer) {
			a.finish()
			return
		}
	}
}

// turn handles ev (if any) and runs maintenance, holding mu; it re-arms
// timer for the oldest waiter and reports whether the pool has finished.
func (a *arbiter) turn(ev any, tick bool, timer *time.Timer) (finished bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ev != nil {
		a.handle(ev)
	}
	now := a.now()
	a.maintain(now, tick)
	if a.finished() {
		return true
	}
	a.timerAt = time.Time{}
	if d, ok := a.disp.nextDeadline(); ok {
		timer.Reset(d.Sub(now))
		a.timerAt = d
	} else {
		timer.Stop()
	}
	return false
}

// maintain runs after every event: queue expiry, pool size, generation
// switch; and on ticks the supervisor (supervise.go).
func (a *arbiter) maintain(now time.Time, tick bool) {
	for _, wt := range a.disp.expire(now) {
		wt.reply <- grant{err: ErrQueueTimeout}
	}
	if tick {
		a.supervise(now)
	}
	a.keepCount(now)
	a.checkPending(now)
}

func (a *arbiter) handle(ev any) {
	now := a.now()
	switch ev := ev.(type) {
	case acquireEv:
		a.acquire(ev.wt, now)
	case cancelEv:
		if a.disp.remove(ev.wt) != nil {
			ev.wt.reply <- grant{err: context.Canceled}
		}
	case releaseEv:
		a.release(ev.w, ev.out, now)
	case spawnedEv:
		a.spawned(ev, now)
	case exitedEv:
		a.exited(ev.w, ev.st, now)
	case bootedEv:
		a.booted(ev.g, ev.err)
	case startGenEv:
		a.startGen(ev.app, ev.reply)
	case abandonGenEv:
		if a.pending != nil && a.pending.reply == ev.reply {
			a.abandon(a.pending, context.DeadlineExceeded, now)
		}
	case scaleEv:
		a.scale(ev.delta)
	case shutdownEv:
		a.shutdown(ev.deadline, ev.reply, now)
	case statsEv:
		ev.reply <- a.stats()
	}
}

func (a *arbiter) acquire(wt *waiter, now time.Time) {
	if a.stopping || a.cur == nil {
		wt.reply <- grant{err: ErrUnavailable}
		return
	}
	if w := a.pick(); w != nil {
		a.lease(w, wt, now)
		return
	}
	if a.cur.failed != nil && a.countLive(a.cur) == 0 {
		wt.reply <- grant{err: ErrUnavailable}
		return
	}
	if !a.disp.enqueue(wt, now) {
		wt.reply <- grant{err: ErrQueueFull}
		return
	}
	a.pipelineHead(now)
}

func (a *arbiter) lease(w *worker, wt *waiter, now time.Time) {
	// A busy command worker takes more requests; anything else moves to
	// Busy by the table.
	if w.http == nil || w.state != Busy {
		if err := w.setState(Busy); err != nil {
			a.log.DPanic("dispatch", zap.String("app", a.name), zap.Error(err))
			wt.reply <- grant{err: ErrUnavailable}
			return
		}
	}
	if w.http == nil {
		w.sending.Store(true)
	}
	w.inflight++
	w.leasedAt = now
	wt.reply <- grant{w: w}
}

// offer makes w available: the oldest waiter gets it, else the idle list
// (a command worker: the ready list, and it takes every waiter).
func (a *arbiter) offer(w *worker, now time.Time) {
	w.idleAt = now
	if w.http != nil {
		a.disp.addReady(w)
		a.serveQueue(now)
		return
	}
	if wt := a.disp.dequeue(); wt != nil {
		a.lease(w, wt, now)
		return
	}
	a.disp.pushIdle(w)
}

// release is a request giving its worker back. Soft limits that marked it
// Draining while busy take effect here (the supervisor marks, release
// retires).
func (a *arbiter) release(w *worker, out outcome, now time.Time) {
	w.inflight--
	w.requests++
	if out == outcomeOK {
		a.noteService(now.Sub(w.leasedAt))
	}
	if w.behind != nil {
		a.passTurn(w, out, now)
	}
	switch out {
	case outcomeTimeout:
		a.markTimeout(w, now)
	case outcomeCrash:
		a.retire(w, Crash, now)
		if w.killAt.IsZero() {
			w.killAt = now.Add(crashGrace) // let it die by itself, so its status says why
		}
	case outcomeProtocol:
		a.retire(w, ProtocolError, now)
		a.kill(w)
	}
	if w.exit != nil {
		if !w.leased() {
			a.finalize(w, now) // the last request on a dead worker
		}
		return
	}
	switch w.state {
	case Busy:
		if r, hit := a.limitHit(w, w.requests, now); hit && a.canRecycle() {
			w.recycling = true
			a.retire(w, r, now) // Busy → Draining; SIGTERM now unless requests still hold it
			return
		}
		if w.leased() {
			if w.http == nil {
				a.pipelineQueued(w, now) // its pipelined request has the turn
			}
			return // or a command worker still serving other requests
		}
		if err := w.setState(Idle); err != nil {
			a.log.DPanic("release", zap.String("app", a.name), zap.Error(err))
			return
		}
		if w.http != nil {
			w.idleAt = now // it never left the ready list
			return
		}
		a.offer(w, now)
	case Draining:
		if !w.leased() && !w.termSent && !w.timedOut.Load() && w.reason != Crash && w.reason != ProtocolError {
			a.terminate(w, now)
		}
	}
}

// retire takes w out of service for reason. Idle workers get SIGTERM now;
// busy ones are marked Draining and get it at release. The first reason
// wins, except that a request timeout overrides (see markTimeout).
func (a *arbiter) retire(w *worker, reason ExitReason, now time.Time) {
	switch w.state {
	case Idle:
		a.undispatch(w)
		w.setState(Draining)
		w.reason = reason
		a.terminate(w, now)
	case Busy:
		a.undispatch(w)
		w.setState(Draining)
		w.reason = reason
		if !w.leased() {
			a.terminate(w, now) // at release, before going idle
		} else if a.stopping {
			w.killAt = a.stopDeadline
		}
	}
}

// terminate asks an unleased worker to exit: SIGTERM, and EOF on its
// socket (a command worker: on its idle keep-alive connections) for good
// measure. SIGKILL follows after graceful_timeout (or at the shutdown
// deadline).
func (a *arbiter) terminate(w *worker, now time.Time) {
	w.termSent = true
	if w.proc != nil {
		w.proc.Signal(syscall.SIGTERM)
	}
	if w.conn != nil {
		w.conn.Close()
	}
	if w.http != nil {
		w.http.closeIdle()
	}
	w.killAt = now.Add(w.gen.app.GracefulTimeout)
	if a.stopping && a.stopDeadline.Before(w.killAt) {
		w.killAt = a.stopDeadline
	}
}

func (a *arbiter) kill(w *worker) {
	if w.proc != nil && w.exit == nil && !w.killed {
		w.killed = true
		w.proc.Signal(syscall.SIGKILL)
	}
}

func (a *arbiter) spawn(g *generation) {
	a.nextID++
	w := &worker{id: a.nextID, gen: g, state: Starting}
	a.workers[w.id] = w
	a.spawning++
	go func() {
		sp, err := g.launcher.spawn(a.ctx, w.id)
		if !a.send(spawnedEv{w: w, sp: sp, err: err}) && err == nil {
			sp.discard()
		}
	}()
}

func (a *arbiter) spawned(ev spawnedEv, now time.Time) {
	a.spawning--
	w := ev.w
	if ev.err != nil {
		w.setState(Exited)
		delete(a.workers, w.id)
		var be *BootError
		if errors.As(ev.err, &be) {
			if w.gen.failed == nil {
				w.gen.failed = ev.err
				msg := "app failed to import; not respawning"
				if be.command {
					msg = "app failed to start; not respawning"
				}
				a.log.Error(msg, zap.String("app", a.name),
					zap.Int("generation", w.gen.id), zap.Int("worker", w.id), zap.Stringer("reason", BootFailed),
					zap.String("traceback", be.Traceback))
			}
			return
		}
		if a.stopping || w.gen.retired {
			return
		}
		a.log.Error("worker failed to start", zap.String("app", a.name), zap.Int("worker", w.id),
			zap.Int("generation", w.gen.id), zap.Stringer("reason", Crash), zap.Error(ev.err))
		a.crashed(now)
		return
	}
	w.proc, w.http = ev.sp.proc, ev.sp.http
	w.pid = w.proc.Pid()
	if ev.sp.conn != nil {
		w.conn, w.rd, w.next = ev.sp.conn, ev.sp.rd, ev.sp.next
		w.wr = wire.NewWriter(w.conn, 0)
	}
	w.setState(Idle)
	w.readyAt = now
	a.setLimits(w, now)
	go func(p process) { a.send(exitedEv{w: w, st: p.Wait()}) }(w.proc)
	a.log.Debug("worker ready", zap.String("app", a.name), zap.Int("worker", w.id),
		zap.Int("pid", w.pid), zap.Int("generation", w.gen.id))
	switch {
	case a.stopping:
		a.retire(w, Shutdown, now)
	case w.gen.retired:
		a.retire(w, Reload, now)
	case w.gen == a.cur:
		a.offer(w, now)
	}
	// A pending generation's workers stay Idle off the idle list until
	// the switch (checkPending).
}

// setLimits draws this worker's max_requests and max_lifetime jitter, so
// workers started together do not all recycle together.
func (a *arbiter) setLimits(w *worker, now time.Time) {
	app := w.gen.app
	if app.MaxRequests > 0 {
		w.maxRequests = app.MaxRequests
		if app.MaxRequestsJitter > 0 {
			w.maxRequests += a.rng.IntN(app.MaxRequestsJitter + 1)
		}
	}
	if app.MaxLifetime > 0 {
		life := app.MaxLifetime
		if app.MaxLifetimeJitter > 0 {
			life += time.Duration(a.rng.Int64N(int64(app.MaxLifetimeJitter) + 1))
		}
		w.retireAt = now.Add(life)
	}
}

func (a *arbiter) exited(w *worker, st exitStatus, now time.Time) {
	w.exit = &st
	if w.leased() {
		// Request goroutines still hold it; they see EOF and release, and
		// the last release finalizes.
		if w.state == Busy {
			a.undispatch(w)
			w.setState(Draining)
		}
		return
	}
	a.finalize(w, now)
}

// finalize removes a reaped, unleased worker and logs its exit with the
// reason decided earlier (Crash if none was).
func (a *arbiter) finalize(w *worker, now time.Time) {
	if w.state == Idle {
		a.undispatch(w)
	}
	if err := w.setState(Exited); err != nil {
		a.log.DPanic("reap", zap.String("app", a.name), zap.Error(err))
	}
	if w.conn != nil {
		w.conn.Close()
	}
	if w.rd != nil {
		w.rd.Close()
	}
	w.next.close()
	if w.http != nil {
		w.http.closeIdle()
	}
	delete(a.workers, w.id)
	logExit(a.log, a.name, w, *w.exit)
	if w.reason == Crash || w.reason == ProtocolError {
		a.crashed(now)
	}
}

// crashed records an unplanned exit for crash-loop backoff: the first
// crash respawns at once (a kill -9 must not cost capacity), the next ones
// within crashWindow wait 100 ms, 200 ms, … up to 10 s, and a loop is
// reported.
func (a *arbiter) crashed(now time.Time) {
	if a.stopping {
		return
	}
	if now.Sub(a.lastCrash) > crashWindow {
		a.streak = 0
	}
	a.lastCrash = now
	a.streak++
	if a.streak < 2 {
		return
	}
	delay := backoffMax
	if shift := a.streak - 2; shift < 16 {
		delay = min(backoffBase<<shift, backoffMax)
	}
	a.spawnAfter = now.Add(delay)
	if a.streak >= 3 {
		a.log.Warn("workers crash-looping; backing off", zap.String("app", a.name),
			zap.Int("crashes_in_a_row", a.streak), zap.Duration("next_spawn_in", delay))
	}
}

// keepCount spawns workers up to want for the serving and the pending
// generation, and retires surplus idle workers after a scale-down.
func (a *arbiter) keepCount(now time.Time) {
	if a.stopping {
		return
	}
	for _, g := range [2]*generation{a.cur, a.pending} {
		if g == nil || !g.booted || g.failed != nil || g.retired {
			continue
		}
		want := a.want
		if g == a.pending {
			want = baseWorkers(g.app)
		}
		live := a.countLive(g)
		for ; live < want && !now.Before(a.spawnAfter); live++ {
			a.spawn(g)
		}
		if g == a.cur && live > want {
			if w := a.longestIdle(); w != nil {
				a.retire(w, ScaleDown, now)
			}
		}
	}
}

func (a *arbiter) countLive(g *generation) int {
	n := 0
	for _, w := range a.workers {
		if w.gen == g && w.live() {
			n++
		}
	}
	return n
}

func baseWorkers(app *conf.App) int {
	return max(app.MinWorkers, min(app.Workers, app.MaxWorkers))
}

func (a *arbiter) scale(delta int) {
	if a.cur == nil || a.stopping {
		return
	}
	app := a.cur.app
	// A signal moves the pool from its current size, autoscaled or not,
	// as gunicorn's TTIN/TTOU move its worker count. SIGTTIN also raises
	// the floor that idle shrinking returns to, so the worker it added
	// stays; SIGTTOU lowers it when it was above the new size.
	n := min(max(a.want+delta, app.MinWorkers), app.MaxWorkers)
	if n == a.want {
		a.log.Info("scale request ignored: at the bound", zap.String("app", a.name),
			zap.Int("workers", n), zap.Int("min_workers", app.MinWorkers), zap.Int("max_workers", app.MaxWorkers))
		return
	}
	a.want = n
	if delta > 0 {
		a.base = max(a.base, n)
	} else {
		a.base = min(a.base, n)
	}
	a.log.Info("scaled", zap.String("app", a.name), zap.Int("workers", n))
}

// shutdown stops dispatch at once; busy workers may finish until deadline,
// then everything left is killed. The reply comes when all are reaped.
func (a *arbiter) shutdown(deadline time.Time, reply chan error, now time.Time) {
	a.stopReplies = append(a.stopReplies, reply)
	if a.stopping {
		return
	}
	a.stopping, a.stopDeadline = true, deadline
	for wt := a.disp.dequeue(); wt != nil; wt = a.disp.dequeue() {
		wt.reply <- grant{err: ErrUnavailable}
	}
	if a.pending != nil {
		a.abandon(a.pending, ErrUnavailable, now)
	}
	for _, w := range a.workers {
		a.retire(w, Shutdown, now)
		if w.state == Draining && (w.killAt.IsZero() || deadline.Before(w.killAt)) {
			w.killAt = deadline
		}
	}
	if a.cur != nil {
		a.cur.retired = true
		a.closeLauncher(a.cur)
	}
	a.cancel() // abort spawns in progress
}

func (a *arbiter) finished() bool {
	return a.stopping && len(a.workers) == 0 && a.spawning == 0 && a.booting == 0
}

func (a *arbiter) finish() {
	a.closers.Wait()
	for _, r := range a.stopReplies {
		r <- nil
	}
}
