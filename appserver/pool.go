package appserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
)

// Pool is one app's supervised workers. Requests enter through Serve or
// ServeHTTP; everything else is the arbiter's.
type Pool struct {
	name  string
	first *conf.App // config for Start
	log   *zap.Logger
	mgr   *Manager

	startOnce sync.Once
	a         *arbiter
	running   atomic.Bool // the arbiter goroutine runs (Start began)
}

// Name is the app's name.
func (p *Pool) Name() string { return p.name }

// start runs the arbiter and boots the first generation.
func (p *Pool) start(ctx context.Context, app *conf.App) error {
	p.startOnce.Do(func() {
		p.a = newArbiter(p.name, p.log, p.mgr.launch)
		p.running.Store(true)
		go p.a.run()
	})
	if err := p.generation(ctx, app); err != nil {
		return fmt.Errorf("start app %s: %w", p.name, err)
	}
	return nil
}

func (p *Pool) reload(ctx context.Context, app *conf.App) error {
	if err := p.generation(ctx, app); err != nil {
		return fmt.Errorf("reload app %s: %w", p.name, err)
	}
	return nil
}

// generation boots a new generation and waits until it serves. If ctx
// ends first the new generation is abandoned and the old keeps serving.
func (p *Pool) generation(ctx context.Context, app *conf.App) error {
	reply := make(chan error, 1)
	if !p.a.send(startGenEv{app: app, reply: reply}) {
		return ErrUnavailable
	}
	select {
	case err := <-reply:
		return err
	case <-p.a.done:
		return ErrUnavailable
	case <-ctx.Done():
		p.a.send(abandonGenEv{reply: reply})
		return fmt.Errorf("waiting for workers: %w", ctx.Err())
	}
}

// shutdownSlack is how long shutdown waits for reaping after the kill
// deadline; SIGKILLed processes exit at once, so this is only a bound.
const shutdownSlack = 5 * time.Second

// shutdown stops the pool: see Manager.Shutdown.
func (p *Pool) shutdown(ctx context.Context) error {
	if !p.running.Load() {
		return nil
	}
	grace := 30 * time.Second
	if p.first != nil {
		grace = p.first.GracefulTimeout
	}
	deadline := time.Now().Add(grace)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	reply := make(chan error, 1)
	if !p.a.send(shutdownEv{deadline: deadline, reply: reply}) {
		return nil // already stopped
	}
	select {
	case err := <-reply:
		return err
	case <-p.a.done:
		return nil // stopped by an earlier call
	case <-time.After(time.Until(deadline) + shutdownSlack):
		return fmt.Errorf("shutdown app %s: workers still running %v after the deadline", p.name, shutdownSlack)
	}
}

func (p *Pool) scale(delta int) {
	if p.running.Load() {
		p.a.send(scaleEv{delta: delta})
	}
}

// Stats returns a snapshot of the pool (zero before Start).
func (p *Pool) Stats() Stats {
	if !p.running.Load() {
		return Stats{}
	}
	reply := make(chan Stats, 1)
	if !p.a.send(statsEv{reply: reply}) {
		return Stats{}
	}
	select {
	case s := <-reply:
		return s
	case <-p.a.done:
		return Stats{}
	}
}

// acquire waits for a worker: an idle one at once, else in the FIFO
// queue until one frees up, the queue times out, or ctx ends.
func (p *Pool) acquire(ctx context.Context) (*worker, error) {
	if !p.running.Load() {
		return nil, ErrUnavailable
	}
	wt := newWaiter()
	if !p.a.send(acquireEv{wt: wt}) {
		return nil, ErrUnavailable
	}
	select {
	case g := <-wt.reply:
		return g.w, g.err
	case <-p.a.done:
		return nil, ErrUnavailable // it answers every waiter before it stops
	case <-ctx.Done():
	}
	// Withdraw. The arbiter may have granted a worker meanwhile; then the
	// grant is already in the channel and goes straight back.
	if !p.a.send(cancelEv{wt: wt}) {
		return nil, ctx.Err()
	}
	var g grant
	select {
	case g = <-wt.reply:
	case <-p.a.done:
		return nil, ctx.Err()
	}
	if g.w != nil {
		p.release(g.w, outcomeOK)
	}
	if g.err != nil && !errors.Is(g.err, context.Canceled) {
		return nil, g.err
	}
	return nil, ctx.Err()
}

// release gives w back to the arbiter with the request's outcome.
func (p *Pool) release(w *worker, out outcome) {
	if !p.a.send(releaseEv{w: w, out: out}) {
		// The arbiter is gone (only after every worker was reaped).
		w.conn.Close()
	}
}
