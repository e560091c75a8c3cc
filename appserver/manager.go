package appserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/tandem-server/tandem/appserver/python"
	"github.com/tandem-server/tandem/conf"
)

// Options are the long-lived dependencies of a Manager.
type Options struct {
	// Log receives worker exits, stderr of the Python processes, and
	// supervision decisions. Nil discards them.
	Log *zap.Logger
	// RuntimeDir is a private directory (mode 0700, created if missing)
	// for the worker script and spilled request/response bodies. Empty
	// means a fresh directory under $TMPDIR, removed at Shutdown. Never a
	// shared directory: spills hold request bodies.
	RuntimeDir string

	// launch replaces the process seam in tests.
	launch launchFunc
}

// Manager runs one Pool per `app` block.
type Manager struct {
	log        *zap.Logger
	runtimeDir string
	ownDir     *runtimeDir // created by us: removed at Shutdown
	launch     launchFunc

	// reaper waits for orphans re-parented to tandem (reaper.go); nil
	// until Start.
	reaper *reaper

	mu      sync.RWMutex
	pools   map[string]*Pool // guarded by mu
	started bool             // guarded by mu
}

// NewManager validates apps and fills defaults on copies; nothing starts.
func NewManager(apps []*conf.App, opts Options) (*Manager, error) {
	m := &Manager{log: opts.Log, runtimeDir: opts.RuntimeDir, launch: opts.launch, pools: make(map[string]*Pool)}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	checked, err := checkApps(apps)
	if err != nil {
		return nil, err
	}
	for _, app := range checked {
		m.pools[app.Name] = m.newPool(app)
	}
	return m, nil
}

// checkApps validates a config's apps and returns copies with defaults.
func checkApps(apps []*conf.App) ([]*conf.App, error) {
	seen := make(map[string]bool)
	out := make([]*conf.App, 0, len(apps))
	for _, a := range apps {
		if a == nil {
			continue
		}
		if a.Name == "" {
			return nil, errors.New("app without a name")
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("app %s defined twice", a.Name)
		}
		seen[a.Name] = true
		switch {
		case a.WSGI != "" && len(a.Command) > 0:
			return nil, fmt.Errorf("app %s: wsgi and command exclude each other", a.Name)
		case len(a.Command) > 0 && a.Command[0] == "":
			return nil, fmt.Errorf("app %s: command without a program", a.Name)
		case a.WSGI == "" && len(a.Command) == 0:
			return nil, fmt.Errorf("app %s: only `wsgi MODULE:CALLABLE;` and `command ARG...;` apps are supported so far", a.Name)
		}
		c := *a
		c.Env = append([]conf.EnvVar(nil), a.Env...)
		c.Command = append([]string(nil), a.Command...)
		withDefaults(&c)
		if c.MinWorkers > c.MaxWorkers {
			return nil, fmt.Errorf("app %s: min_workers %d > max_workers %d", a.Name, c.MinWorkers, c.MaxWorkers)
		}
		out = append(out, &c)
	}
	return out, nil
}

// withDefaults fills zero fields with the documented defaults (conf fills
// them too; this keeps hand-built Apps in tests and embedders safe).
func withDefaults(a *conf.App) {
	if a.Workers <= 0 {
		a.Workers = 2*runtime.NumCPU() + 1
	}
	if a.MaxWorkers <= 0 {
		a.MaxWorkers = max(a.Workers, a.MinWorkers)
	}
	if a.MinWorkers <= 0 {
		a.MinWorkers = min(a.Workers, a.MaxWorkers)
	}
	if a.Timeout <= 0 {
		a.Timeout = 30 * time.Second
	}
	if a.GracefulTimeout <= 0 {
		a.GracefulTimeout = 30 * time.Second
	}
	if a.Queue <= 0 {
		a.Queue = 1024
	}
	if a.QueueTimeout <= 0 {
		a.QueueTimeout = 30 * time.Second
	}
	if a.Python == "" {
		a.Python = "python3"
		if _, err := os.Stat("/usr/bin/python3"); err == nil {
			a.Python = "/usr/bin/python3"
		} else if p, err := exec.LookPath("python3"); err == nil {
			a.Python = p
		}
	}
	if a.Chdir == "" {
		if wd, err := os.Getwd(); err == nil {
			a.Chdir = wd
		}
	}
}

func (m *Manager) newPool(app *conf.App) *Pool {
	return &Pool{name: app.Name, first: app, log: m.log, mgr: m}
}

// Start prepares the runtime directory, marks tandem a child subreaper
// (preload workers are re-parented to it), and boots every app. It returns
// when every pool serves, or with the first boot errors, an import error
// carrying the Python traceback. On error nothing is left running.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("appserver: Start called twice")
	}
	m.started = true
	pools := m.poolsLocked()
	m.mu.Unlock()

	if err := m.prepare(); err != nil {
		return err
	}
	err := eachConcurrently(pools, func(p *Pool) error { return p.start(ctx, p.first) })
	if err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Shutdown(sctx)
		return err
	}
	return nil
}

// prepare creates the runtime dir, writes the worker script and becomes a
// subreaper.
func (m *Manager) prepare() error {
	if m.runtimeDir == "" {
		dir, err := makeRuntimeDir(m.log)
		if err != nil {
			return err
		}
		m.runtimeDir, m.ownDir = dir.path, dir
	} else {
		if err := os.MkdirAll(m.runtimeDir, 0o700); err != nil {
			return fmt.Errorf("runtime dir: %w", err)
		}
		// It holds request bodies: refuse to leave it readable by others.
		if err := os.Chmod(m.runtimeDir, 0o700); err != nil {
			return fmt.Errorf("runtime dir: %w", err)
		}
	}
	if m.launch == nil {
		script := filepath.Join(m.runtimeDir, python.FileName)
		if err := writeFileAtomic(script, python.Script, 0o600); err != nil {
			return fmt.Errorf("write worker script: %w", err)
		}
		m.launch = newOSLauncher(script, m.runtimeDir, m.log)
	}
	// Workers forked by a zygote are orphaned on purpose (double fork);
	// as subreaper we inherit them and can wait for them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	// Everything else re-parented to us is waited for by the reaper.
	m.reaper = startReaper(m.log, orphanScanInterval)
	return nil
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), perm)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// poolsLocked returns the pools; m.mu must be held.
func (m *Manager) poolsLocked() []*Pool {
	out := make([]*Pool, 0, len(m.pools))
	for _, p := range m.pools {
		out = append(out, p)
	}
	return out
}

// Waits returns how many requests asked the pools for a worker and how
// many of them had to queue for one, since start. Both only grow, except
// that a reload which removes an app drops its counts. Mostly-queued
// requests mean the workers, not the edge, bound the rate.
func (m *Manager) Waits() (asked, queued uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, p := range m.pools {
		asked += p.asked.Load()
		queued += p.queued.Load()
	}
	return asked, queued
}

// Pool returns the pool serving app name, or nil. The same *Pool serves
// the app across reloads.
func (m *Manager) Pool(name string) *Pool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pools[name]
}

// Reload applies a new set of apps. For each kept app a new generation
// imports the new code; dispatch switches to it only when all its workers
// are ready, and the old workers finish their requests and exit (reason
// Reload). If the new code fails to import, the old generation keeps
// serving and the error (with the traceback) is returned. New apps start;
// removed apps shut down after the rest is ready. Errors of several apps
// are joined.
func (m *Manager) Reload(ctx context.Context, apps []*conf.App) error {
	checked, err := checkApps(apps)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if !m.started {
		// A config without apps starts no manager (no runtime dir, no
		// subreaper); the first reload that brings an app prepares it.
		if len(checked) == 0 {
			m.mu.Unlock()
			return nil
		}
		m.started = true
		m.mu.Unlock()
		if err := m.prepare(); err != nil {
			m.mu.Lock()
			m.started = false
			m.mu.Unlock()
			return err
		}
		m.mu.Lock()
	}
	keep := make(map[string]bool)
	type job struct {
		p   *Pool
		app *conf.App
		add bool
		err error
	}
	var jobs []*job
	for _, app := range checked {
		keep[app.Name] = true
		if p := m.pools[app.Name]; p != nil {
			jobs = append(jobs, &job{p: p, app: app})
		} else {
			jobs = append(jobs, &job{p: m.newPool(app), app: app, add: true})
		}
	}
	var gone []*Pool
	for name, p := range m.pools {
		if !keep[name] {
			gone = append(gone, p)
		}
	}
	m.mu.Unlock()

	err = eachConcurrently(jobs, func(j *job) error {
		if j.add {
			j.err = j.p.start(ctx, j.app)
		} else {
			j.err = j.p.reload(ctx, j.app)
		}
		return j.err
	})

	m.mu.Lock()
	for _, j := range jobs {
		if j.add && j.err == nil {
			m.pools[j.app.Name] = j.p
		}
	}
	for _, p := range gone {
		delete(m.pools, p.name)
	}
	m.mu.Unlock()
	for _, j := range jobs {
		if j.add && j.err != nil {
			gone = append(gone, j.p) // started halfway: stop it
		}
	}
	return errors.Join(err, eachConcurrently(gone, func(p *Pool) error { return p.shutdown(ctx) }))
}

// Shutdown stops every pool: dispatch stops at once (queued requests get
// 503), in-flight requests may finish until each app's graceful_timeout or
// ctx's deadline, whichever is first; then workers are killed. It returns
// once every worker and zygote is reaped, and removes a runtime dir it
// created.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	pools := m.poolsLocked()
	m.mu.Unlock()
	err := eachConcurrently(pools, func(p *Pool) error { return p.shutdown(ctx) })
	return errors.Join(err, m.finishShutdown())
}

// ShutdownWhenDrained stops every pool the way SIGTERM asks (gunicorn's
// graceful_timeout): each keeps serving as usual, queued requests
// included, until drained is closed (the edge has no request left) or its
// graceful_timeout has passed since signaled, whichever comes first. It
// then stops as Shutdown does with signaled + graceful_timeout as the
// deadline, so a request still running past it is cut (the worker is
// killed, the client gets 502) and one still queued gets 503.
func (m *Manager) ShutdownWhenDrained(signaled time.Time, drained <-chan struct{}) error {
	m.mu.Lock()
	pools := m.poolsLocked()
	m.mu.Unlock()
	err := eachConcurrently(pools, func(p *Pool) error {
		deadline := signaled.Add(p.gracefulTimeout())
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		return p.shutdown(ctx)
	})
	return errors.Join(err, m.finishShutdown())
}

// finishShutdown stops the reaper and removes a runtime dir we created.
func (m *Manager) finishShutdown() error {
	if m.reaper != nil {
		m.reaper.close()
	}
	if d := m.ownDir; d != nil {
		m.ownDir = nil
		return d.remove()
	}
	return nil
}

// eachConcurrently runs f on every item at once (pools boot, reload and
// stop independently, so one slow app does not hold up the others) and
// joins the errors.
func eachConcurrently[T any](items []T, f func(T) error) error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(it)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ScaleUp adds a worker to app name, up to max_workers (SIGTTIN).
func (m *Manager) ScaleUp(name string) { m.scale(name, +1) }

// ScaleDown removes a worker from app name, down to min_workers (SIGTTOU).
// The longest idle worker exits with reason ScaleDown.
func (m *Manager) ScaleDown(name string) { m.scale(name, -1) }

func (m *Manager) scale(name string, delta int) {
	if p := m.Pool(name); p != nil {
		p.scale(delta)
	}
}

// RuntimeDir is the private directory in use (after Start).
func (m *Manager) RuntimeDir() string { return m.runtimeDir }

var _ http.Handler = (*Pool)(nil)
