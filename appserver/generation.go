package appserver

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
)

// generation is one import of an app's code: a zygote (preload) and the
// workers forked from it. A reload makes a new generation; dispatch
// switches to it only once all its workers are ready.
type generation struct {
	id       int
	app      *conf.App
	launcher launcher
	booted   bool       // boot returned nil: workers may be spawned
	failed   error      // import failed: never spawn for it again
	retired  bool       // replaced or abandoned: its workers drain
	reply    chan error // the Start/Reload call waiting for it; nil once answered
}

// concurrent reports a generation of command workers, each of which
// serves many requests at once (dispatch: fewest in flight, see
// concurrent.go).
func (g *generation) concurrent() bool { return len(g.app.Command) > 0 }

func (a *arbiter) startGen(app *conf.App, reply chan error) {
	if a.stopping {
		reply <- ErrUnavailable
		return
	}
	now := a.now()
	if a.pending != nil {
		a.abandon(a.pending, errors.New("superseded by a newer reload"), now)
	}
	a.genSeq++
	g := &generation{id: a.genSeq, app: app, launcher: a.launch(a.genSeq, app), reply: reply}
	a.pending = g
	a.booting++
	go func() {
		err := g.launcher.boot(a.ctx)
		if !a.send(bootedEv{g: g, err: err}) {
			g.launcher.close()
		}
	}()
}

func (a *arbiter) booted(g *generation, err error) {
	a.booting--
	if g != a.pending {
		a.closeLauncher(g) // abandoned while booting
		return
	}
	if err != nil {
		g.failed = err
		// At start there is no serving generation to fall back on, and
		// saying there is misleads whoever reads the log of a failed start.
		msg := "app failed to boot; keeping the serving generation"
		if a.cur == nil {
			msg = "app failed to boot; nothing serves it"
		}
		a.log.Error(msg, zap.String("app", a.name), zap.Int("generation", g.id), zap.Error(err))
		a.abandon(g, err, a.now())
		return
	}
	g.booted = true
}

// checkPending switches to the pending generation once all its workers are
// ready, or abandons it when it failed.
func (a *arbiter) checkPending(now time.Time) {
	g := a.pending
	if g == nil || !g.booted {
		return
	}
	if g.failed != nil {
		a.abandon(g, g.failed, now)
		return
	}
	ready := 0
	for _, w := range a.workers {
		if w.gen == g && w.state == Idle {
			ready++
		}
	}
	if ready >= baseWorkers(g.app) {
		a.switchTo(g, now)
	}
}

// switchTo makes g the serving generation; the old one's workers drain
// (busy ones finish their request) and exit with reason Reload.
func (a *arbiter) switchTo(g *generation, now time.Time) {
	old := a.cur
	a.cur, a.pending = g, nil
	app := g.app
	a.base = baseWorkers(app)
	a.want = a.base
	a.disp.limit, a.disp.timeout = app.Queue, app.QueueTimeout
	a.httpWorkers.Store(g.concurrent())
	a.streak, a.spawnAfter = 0, time.Time{}
	if old != nil {
		old.retired = true
		for _, w := range a.workers {
			if w.gen == old {
				a.retire(w, Reload, now)
			}
		}
		a.closeLauncher(old)
	}
	for _, w := range a.workers {
		if w.gen == g && w.state == Idle {
			a.offer(w, now)
		}
	}
	kind := zap.Bool("preload", app.Preload)
	if g.concurrent() {
		kind = zap.Strings("command", app.Command)
	}
	a.log.Info("app generation serving", zap.String("app", a.name), zap.Int("generation", g.id),
		zap.Int("workers", a.want), kind)
	a.answer(g, nil)
}

// abandon gives up on a generation that is not serving: its workers stop
// and its Start/Reload caller gets err.
func (a *arbiter) abandon(g *generation, err error, now time.Time) {
	if g == a.pending {
		a.pending = nil
	}
	g.retired = true
	for _, w := range a.workers {
		if w.gen == g {
			a.retire(w, Reload, now)
		}
	}
	a.answer(g, err)
	if g.booted || g.failed != nil {
		a.closeLauncher(g)
	}
	// Still booting: booted() closes it when its event arrives.
}

func (a *arbiter) answer(g *generation, err error) {
	if g.reply != nil {
		g.reply <- err
		g.reply = nil
	}
}

func (a *arbiter) closeLauncher(g *generation) {
	a.closers.Add(1)
	go func() {
		defer a.closers.Done()
		g.launcher.close()
	}()
}
