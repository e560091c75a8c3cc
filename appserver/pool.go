package appserver

import (
	"context"
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

	// Requests that asked for a worker, and those of them that had to
	// queue for one (see Manager.Waits).
	asked, queued atomic.Uint64
	// Requests pipelined to a busy worker, and those of them dispatched
	// again because that worker failed before reading them (pipeline.go).
	pipelined, redispatched atomic.Uint64
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
// gracefulTimeout is how long the pool's requests may run on after a stop.
func (p *Pool) gracefulTimeout() time.Duration {
	if p.first != nil {
		return p.first.GracefulTimeout
	}
	return 30 * time.Second
}

func (p *Pool) shutdown(ctx context.Context) error {
	if !p.running.Load() {
		return nil
	}
	deadline := time.Now().Add(p.gracefulTimeout())
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
		s.Pipelined, s.Redispatched = p.pipelined.Load(), p.redispatched.Load()
		return s
	case <-p.a.done:
		return Stats{}
	}
}
