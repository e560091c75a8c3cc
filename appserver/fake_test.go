package appserver

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tandem-server/tandem/appserver/wire"
	"github.com/tandem-server/tandem/conf"
)

// The fakes stand in for the OS seam (spawn.go) so arbiter decisions can
// be tested deterministically: the test owns the clock, delivers events
// one by one, and decides when and how each "process" exits.

type fakeProc struct {
	pid  int
	mu   sync.Mutex
	sigs []syscall.Signal
	exit chan exitStatus // buffered 1; first exit wins
}

func newFakeProc(pid int) *fakeProc { return &fakeProc{pid: pid, exit: make(chan exitStatus, 1)} }

func (p *fakeProc) Pid() int { return p.pid }

func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.sigs = append(p.sigs, sig)
	p.mu.Unlock()
	switch sig {
	case syscall.SIGKILL:
		p.die(exitStatus{Code: -1, Signal: syscall.SIGKILL})
	case syscall.SIGTERM:
		p.die(exitStatus{Code: 0})
	}
	return nil
}

func (p *fakeProc) die(st exitStatus) {
	select {
	case p.exit <- st:
	default:
	}
}

func (p *fakeProc) Wait() exitStatus { return <-p.exit }

func (p *fakeProc) signals() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.sigs...)
}

type fakeLauncher struct {
	app      *conf.App // a command app gets HTTP workers (that nothing listens for)
	mu       sync.Mutex
	bootErr  error
	spawnErr error
	procs    map[int]*fakeProc // by worker id
	peers    []*net.UnixConn
	closed   bool
}

func (l *fakeLauncher) boot(context.Context) error { return l.bootErr }

func (l *fakeLauncher) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, c := range l.peers {
		c.Close()
	}
}

func (l *fakeLauncher) spawn(ctx context.Context, id int) (spawned, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spawnErr != nil {
		return spawned{}, l.spawnErr
	}
	if l.app != nil && len(l.app.Command) > 0 {
		p := newFakeProc(10000 + id)
		l.procs[id] = p
		return spawned{http: newBackend(target{"unix", "/nonexistent/tandem-fake.sock"}, l.app, zap.NewNop(), id), proc: p}, nil
	}
	ours, theirs, err := socketpair()
	if err != nil {
		return spawned{}, err
	}
	peer, err := net.FileConn(theirs)
	theirs.Close()
	if err != nil {
		return spawned{}, err
	}
	l.peers = append(l.peers, peer.(*net.UnixConn))
	p := newFakeProc(10000 + id)
	l.procs[id] = p
	return spawned{conn: ours, rd: wire.NewReader(ours, 0), proc: p}, nil
}

func (l *fakeLauncher) proc(id int) *fakeProc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[id]
}

// arbiterRig drives an arbiter by hand: no run goroutine, a fake clock.
type arbiterRig struct {
	t     *testing.T
	a     *arbiter
	now   time.Time
	logs  *observer.ObservedLogs
	gens  []*fakeLauncher
	app   *conf.App
	reply chan error
	// bootErr is what the next generation's boot returns.
	bootErr error
}

func newRig(t *testing.T, app *conf.App) *arbiterRig {
	core, logs := observer.New(zap.DebugLevel)
	r := &arbiterRig{t: t, now: time.Unix(1_000_000, 0), logs: logs, app: app}
	checked, err := checkApps([]*conf.App{app})
	if err != nil {
		t.Fatal(err)
	}
	r.app = checked[0]
	r.a = newArbiter("fake", zap.New(core), func(gen int, app *conf.App) launcher {
		l := &fakeLauncher{app: app, procs: make(map[int]*fakeProc), bootErr: r.bootErr}
		r.gens = append(r.gens, l)
		return l
	})
	r.a.now = func() time.Time { return r.now }
	r.a.memory = func(pid int) (int64, error) { return 0, errors.New("no memory sampling in this test") }
	t.Cleanup(func() {
		for _, l := range r.gens {
			l.close()
		}
		for _, w := range r.a.workers {
			if w.conn != nil {
				w.conn.Close()
			}
		}
	})
	return r
}

func fakeApp(workers int) *conf.App {
	return &conf.App{Name: "fake", WSGI: "app:application", Python: "/bin/false", Chdir: os.TempDir(),
		Workers: workers, Timeout: 10 * time.Second, GracefulTimeout: 5 * time.Second,
		Queue: 4, QueueTimeout: time.Second}
}

// step handles one event from a goroutine (spawn result, exit) and runs
// the arbiter's per-event maintenance.
func (r *arbiterRig) step() any {
	r.t.Helper()
	select {
	case ev := <-r.a.events:
		r.a.handle(ev)
		r.a.maintain(r.now, false)
		return ev
	case <-time.After(5 * time.Second):
		r.t.Fatal("no event from the arbiter's goroutines")
		return nil
	}
}

// do handles an event the test makes up (acquire, release, command).
func (r *arbiterRig) do(ev any) {
	r.a.handle(ev)
	r.a.maintain(r.now, false)
}

// tick advances the clock and runs a supervision tick.
func (r *arbiterRig) tick(d time.Duration) {
	r.now = r.now.Add(d)
	r.a.maintain(r.now, true)
}

// boot starts generation 1 and waits until it serves.
func (r *arbiterRig) boot() {
	r.t.Helper()
	r.reply = make(chan error, 1)
	r.do(startGenEv{app: r.app, reply: r.reply})
	r.step() // booted
	for {
		select {
		case err := <-r.reply:
			if err != nil {
				r.t.Fatalf("boot: %v", err)
			}
			return
		default:
			r.step()
		}
	}
}

// drainSpawns handles spawn results until no spawn is in flight.
func (r *arbiterRig) drainSpawns() {
	r.t.Helper()
	for r.a.spawning > 0 {
		r.step()
	}
}

// acquire asks for a worker; nil if queued.
func (r *arbiterRig) acquire() (*waiter, *worker, error) {
	wt := newWaiter()
	r.do(acquireEv{wt: wt})
	select {
	case g := <-wt.reply:
		return wt, g.w, g.err
	default:
		return wt, nil, nil
	}
}

func (r *arbiterRig) mustAcquire() *worker {
	r.t.Helper()
	_, w, err := r.acquire()
	if err != nil || w == nil {
		r.t.Fatalf("acquire: %v, %v", w, err)
	}
	return w
}

func (r *arbiterRig) proc(w *worker) *fakeProc { return w.proc.(*fakeProc) }

// exit makes w's process exit and delivers the event.
func (r *arbiterRig) exit(w *worker, st exitStatus) {
	r.t.Helper()
	r.proc(w).die(st)
	r.awaitExit(w)
}

// awaitExit handles events until w's exit has been processed.
func (r *arbiterRig) awaitExit(w *worker) {
	r.t.Helper()
	for w.exit == nil {
		r.step()
	}
}

func (r *arbiterRig) count(state State) int {
	n := 0
	for _, w := range r.a.workers {
		if w.state == state {
			n++
		}
	}
	return n
}

func (r *arbiterRig) exits(reason ExitReason) int {
	return r.logs.FilterField(zap.Stringer("reason", reason)).FilterMessageSnippet("worker exited").Len()
}

func hasSignal(sigs []syscall.Signal, s syscall.Signal) bool {
	for _, x := range sigs {
		if x == s {
			return true
		}
	}
	return false
}
