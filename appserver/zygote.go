package appserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/appserver/wire"
)

// zygoteLauncher runs one generation with preload on: a zygote process
// imports the app once, then forks a worker for each `f` frame it gets on
// its control socket (fd 3). Workers are double-forked, so they are
// re-parented to tandem (a child subreaper) and waited for like any child.
//
// If the zygote dies, the next spawn boots a new one; that re-imports the
// code now on disk, which is logged because it is in effect a reload.
type zygoteLauncher struct {
	cfg osLauncherConfig

	mu sync.Mutex // guards z and closed
	z  *zygote
	// closed is set by close; spawns after it fail.
	closed bool
}

// zygote is one running zygote process.
type zygote struct {
	cmd    *osProcess
	ctl    *net.UnixConn
	pid    int
	exited chan struct{} // closed once reaped
	status exitStatus    // valid after exited

	wmu sync.Mutex // serialises writes to ctl

	mu      sync.Mutex // guards pending and dead
	pending map[int]*pendingFork
	dead    error // why the control channel ended; nil while alive
}

// pendingFork is a worker asked for and not yet ready.
type pendingFork struct {
	conn *net.UnixConn
	err  error // fork error reported by the zygote
}

// zygoteCloseWait bounds how long close waits after SIGTERM before SIGKILL.
const zygoteCloseWait = 5 * time.Second

func (l *zygoteLauncher) boot(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("generation closed")
	}
	z, err := l.start(ctx)
	if err != nil {
		return err
	}
	l.z = z
	return nil
}

// start runs a zygote and waits for its r or i frame.
func (l *zygoteLauncher) start(ctx context.Context) (*zygote, error) {
	name := l.cfg.app.Name
	ctl, theirs, err := socketpair()
	if err != nil {
		return nil, err
	}
	out, err := startChildOutput(l.cfg.log, zap.String("app", name), zap.Int("generation", l.cfg.gen))
	if err != nil {
		ctl.Close()
		theirs.Close()
		return nil, err
	}
	slog := out.errLog
	cmd, err := l.cfg.command("zygote", theirs, out)
	if err == nil {
		err = cmd.Start()
	}
	theirs.Close()
	out.closeParentEnds()
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("start zygote %s: %w", l.cfg.app.Python, err)
	}
	z := &zygote{cmd: &osProcess{cmd: cmd}, ctl: ctl, pid: cmd.Process.Pid,
		exited: make(chan struct{}), pending: make(map[int]*pendingFork)}
	go func() {
		z.status = z.cmd.Wait()
		close(z.exited)
	}()

	f, err := z.readFirst(ctx)
	switch {
	case err == nil && f.Type == wire.ZygoteReady:
		go z.readControl(l.cfg.log.With(zap.String("app", name), zap.Int("generation", l.cfg.gen), zap.Int("zygote_pid", z.pid)))
		l.cfg.log.Info("zygote ready", zap.String("app", name), zap.Int("generation", l.cfg.gen), zap.Int("pid", z.pid))
		return z, nil
	case err == nil && f.Type == wire.ImportError:
		tb := string(f.Payload)
		z.kill()
		return nil, &BootError{App: name, Traceback: tb}
	}
	z.kill()
	if err == nil {
		err = fmt.Errorf("unexpected frame %q from zygote", f.Type)
	}
	tail := slog.Tail(time.Second)
	if z.status.Code == exitCodeBootFailed && tail != "" {
		return nil, &BootError{App: name, Traceback: tail}
	}
	return nil, fmt.Errorf("zygote of app %s (%v, %s): %s", name, err, z.status, tail)
}

// readFirst reads the zygote's first control frame, abandoning it when ctx
// ends.
func (z *zygote) readFirst(ctx context.Context) (wire.Frame, error) {
	deadline := time.Now().Add(spawnTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	z.ctl.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { z.ctl.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	f, err := wire.NewReader(z.ctl, 4096).ReadFrame()
	z.ctl.SetReadDeadline(time.Time{})
	if err != nil {
		return f, err
	}
	// Copy: the reader (and its buffer) is dropped here.
	f.Payload = append([]byte(nil), f.Payload...)
	return f, nil
}

// readControl handles e (fork error) frames until the control socket
// closes, then fails every pending fork.
func (z *zygote) readControl(log *zap.Logger) {
	rd := wire.NewReader(z.ctl, 4096)
	defer rd.Close()
	for {
		f, err := rd.ReadFrame()
		if err != nil {
			z.fail(fmt.Errorf("zygote control channel: %w", err))
			return
		}
		if f.Type != wire.ForkError {
			log.Warn("unexpected zygote frame", zap.String("type", string(rune(f.Type))))
			continue
		}
		id := int(f.Stream)
		z.mu.Lock()
		if p := z.pending[id]; p != nil {
			p.err = fmt.Errorf("zygote fork: %s", f.Payload)
			p.conn.SetReadDeadline(time.Unix(1, 0)) // wake the spawn waiting for R
		}
		z.mu.Unlock()
	}
}

func (z *zygote) fail(err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.dead == nil {
		z.dead = err
	}
	for _, p := range z.pending {
		if p.err == nil {
			p.err = err
		}
		p.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// kill stops the zygote and waits until it is reaped (bounded).
func (z *zygote) kill() {
	z.ctl.Close() // EOF on fd 3: the zygote returns from its loop
	z.cmd.Signal(syscall.SIGTERM)
	select {
	case <-z.exited:
		return
	case <-time.After(zygoteCloseWait):
	}
	z.cmd.Signal(syscall.SIGKILL)
	<-z.exited
}

func (l *zygoteLauncher) close() {
	l.mu.Lock()
	z := l.z
	l.z, l.closed = nil, true
	l.mu.Unlock()
	if z != nil {
		z.kill()
	}
}

// current returns a live zygote, booting a new one if the last one died.
func (l *zygoteLauncher) current(ctx context.Context) (*zygote, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("generation closed")
	}
	if l.z != nil {
		l.z.mu.Lock()
		dead := l.z.dead
		l.z.mu.Unlock()
		if dead == nil {
			return l.z, nil
		}
		l.cfg.log.Error("zygote died; starting a new one (this re-imports the app)",
			zap.String("app", l.cfg.app.Name), zap.Int("generation", l.cfg.gen), zap.Error(dead))
		old := l.z
		l.z = nil
		go old.kill()
	}
	z, err := l.start(ctx)
	if err != nil {
		return nil, err
	}
	l.z = z
	return z, nil
}

func (l *zygoteLauncher) spawn(ctx context.Context, id int) (spawned, error) {
	z, err := l.current(ctx)
	if err != nil {
		return spawned{}, err
	}
	conn, theirs, err := socketpair()
	if err != nil {
		return spawned{}, err
	}
	p := &pendingFork{conn: conn}
	z.mu.Lock()
	if z.dead != nil {
		z.mu.Unlock()
		conn.Close()
		theirs.Close()
		return spawned{}, z.dead
	}
	z.pending[id] = p
	z.mu.Unlock()
	defer func() {
		z.mu.Lock()
		delete(z.pending, id)
		z.mu.Unlock()
	}()

	z.wmu.Lock()
	err = wire.WriteFrameFD(z.ctl, wire.Fork, uint32(id), nil, int(theirs.Fd()))
	z.wmu.Unlock()
	theirs.Close() // the zygote has its own copy now
	if err != nil {
		conn.Close()
		return spawned{}, fmt.Errorf("send fork request: %w", err)
	}
	rd, next, pid, err := readReady(ctx, conn)
	if err != nil {
		conn.Close()
		z.mu.Lock()
		if p.err != nil {
			err = p.err
		}
		z.mu.Unlock()
		return spawned{}, err
	}
	// The worker is our child now (it waited to be re-parented before
	// sending R), so Wait works; FindProcess opens a pidfd, so signals
	// cannot reach a recycled pid.
	proc, err := os.FindProcess(pid)
	if err != nil {
		conn.Close()
		next.close()
		return spawned{}, fmt.Errorf("find worker pid %d: %w", pid, err)
	}
	return spawned{conn: conn, rd: rd, next: next, proc: &osProcess{p: proc}}, nil
}
