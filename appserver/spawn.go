package appserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tandem-server/tandem/appserver/wire"
	"github.com/tandem-server/tandem/conf"
)

// This file is the OS seam: everything that starts, signals or waits for a
// process goes through launcher and process, so arbiter tests can swap in
// fakes (spawn_fake_test.go) and decide timeouts and crashes
// deterministically.

// process is one OS process the arbiter signals and waits for.
type process interface {
	Pid() int
	// Signal must not reach another process once this one is reaped; the
	// real implementation uses a pidfd, so a recycled pid is never hit.
	Signal(sig syscall.Signal) error
	// Wait blocks until the process exits; it is called exactly once.
	Wait() exitStatus
}

// spawned is a worker that is ready: a Python worker that has sent R
// (conn and rd set), or a command worker that accepts connections (http
// set).
type spawned struct {
	conn *net.UnixConn
	rd   *wire.Reader // holds anything read past R
	next *nextQueue   // sent with R; nil if none came
	http *backend
	proc process
}

// discard stops a worker that was started but will not be used.
func (sp spawned) discard() {
	if sp.conn != nil {
		sp.conn.Close()
	}
	sp.next.close()
	if sp.http != nil {
		sp.http.closeIdle()
	}
	sp.proc.Signal(syscall.SIGKILL)
	sp.proc.Wait()
}

// launcher starts the processes of one app generation.
type launcher interface {
	// boot prepares the generation: with preload it starts the zygote and
	// waits for r (ready) or i (import error, returned as *BootError).
	boot(ctx context.Context) error
	// spawn starts worker id and returns once it is ready (a Python
	// worker has sent R; a command worker accepts connections). An import
	// failure, or a command that never got ready, is a *BootError, which
	// stops respawning.
	spawn(ctx context.Context, id int) (spawned, error)
	// close stops the zygote, if any, and waits for it (bounded). Workers
	// already forked are not touched: they are the arbiter's.
	close()
}

// launchFunc makes the launcher for generation gen of app.
type launchFunc func(gen int, app *conf.App) launcher

// BootError is an app that failed to import, or a `command` app whose
// first worker exited or timed out before it accepted connections.
// Traceback is the Python traceback as the worker printed it (for a
// command: why it was not ready and the last lines of its output).
type BootError struct {
	App       string
	Traceback string

	command bool // a command worker that never got ready, not an import
}

func (e *BootError) Error() string {
	return fmt.Sprintf("app %s %s:\n%s", e.App, e.what(), e.Traceback)
}

func (e *BootError) what() string {
	if e.command {
		return "failed to start"
	}
	return "failed to import"
}

// spawnTimeout bounds a worker's start (import included, without preload):
// a worker that never sends R must not hold a slot forever.
const spawnTimeout = 60 * time.Second

// osLauncherConfig is what real launchers share.
type osLauncherConfig struct {
	app        *conf.App
	gen        int
	script     string // path of tandem_worker.py in the runtime dir
	runtimeDir string // private dir for command workers' sockets
	log        *zap.Logger
	cred       *syscall.Credential // user/group to drop to; nil = keep ours
}

// newOSLauncher is the production launchFunc.
func newOSLauncher(script, runtimeDir string, log *zap.Logger) launchFunc {
	return func(gen int, app *conf.App) launcher {
		c := osLauncherConfig{app: app, gen: gen, script: script, runtimeDir: runtimeDir, log: log}
		switch {
		case len(app.Command) > 0:
			return &commandLauncher{cfg: c}
		case app.Preload:
			return &zygoteLauncher{cfg: c}
		}
		return &freshLauncher{cfg: c}
	}
}

// command builds the python command line for mode "worker" or "zygote",
// with ctl as its fd 3.
func (c *osLauncherConfig) command(mode string, ctl *os.File, out childOutput) (*exec.Cmd, error) {
	args := []string{"-u", c.script, mode, "--app", c.app.WSGI}
	if c.app.Chdir != "" {
		args = append(args, "--chdir", c.app.Chdir)
	}
	if !c.app.NormalScheduling {
		args = append(args, "--sched", "batch")
	}
	cmd := exec.Command(c.app.Python, args...)
	cmd.Dir = c.app.Chdir
	cmd.Env = os.Environ()
	for _, e := range c.app.Env {
		cmd.Env = append(cmd.Env, e.Key+"="+e.Value)
	}
	cmd.ExtraFiles = []*os.File{ctl}
	// Stderr is a real pipe, not an io.Writer: with an io.Writer, Wait
	// would also wait for every forked worker that inherited the pipe.
	cmd.Stderr = out.stderr
	cmd.Stdout = out.stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.app.User != "" || c.app.Group != "" {
		cred, err := lookupCredential(c.app.User, c.app.Group)
		if err != nil {
			return nil, err
		}
		if err := c.shareScript(); err != nil {
			return nil, err
		}
		cmd.SysProcAttr.Credential = cred
	}
	return cmd, nil
}

// shareScript lets an interpreter running as another user (user, group)
// read the worker script: the script becomes 0644 (it is tandem's own
// code, nothing secret) and the runtime dir 0711, traversable but not
// listable, as for command apps' sockets (makeSockDir). Request bodies
// spooled there stay 0600 and unlinked.
func (c *osLauncherConfig) shareScript() error {
	if err := os.Chmod(c.script, 0o644); err != nil {
		return fmt.Errorf("worker script: %w", err)
	}
	if err := os.Chmod(filepath.Dir(c.script), 0o711); err != nil {
		return fmt.Errorf("runtime dir: %w", err)
	}
	return nil
}

func lookupCredential(userName, groupName string) (*syscall.Credential, error) {
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", userName, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", groupName, err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		cred.Gid = uint32(gid)
	}
	return cred, nil
}

// socketpair returns our end as a *net.UnixConn (in the runtime poller)
// and the child's end as an *os.File to pass on. Both are close-on-exec;
// exec.Cmd.ExtraFiles and SCM_RIGHTS hand the child its own copy.
func socketpair() (*net.UnixConn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "tandem-worker-edge")
	theirs := os.NewFile(uintptr(fds[1]), "tandem-worker")
	c, err := net.FileConn(ours)
	ours.Close() // FileConn dups it
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return c.(*net.UnixConn), theirs, nil
}

// readReady reads the worker's R frame within ctx and spawnTimeout, and
// the pipelining queue sent with it (see nextQueue).
func readReady(ctx context.Context, conn *net.UnixConn) (*wire.Reader, *nextQueue, int, error) {
	deadline := time.Now().Add(spawnTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	rd := wire.NewReader(conn, 0)
	f, err := rd.ReadFrame()
	if err != nil {
		return nil, nil, 0, err
	}
	if f.Type != wire.Ready {
		return nil, nil, 0, fmt.Errorf("first frame %q, want R", f.Type)
	}
	pid, err := strconv.Atoi(string(f.Payload))
	if err != nil || pid <= 0 {
		return nil, nil, 0, fmt.Errorf("bad pid %q in R frame", f.Payload)
	}
	conn.SetReadDeadline(time.Time{})
	return rd, takeNextQueue(rd), pid, nil
}

// osProcess is a real process. Exactly one of cmd (our child by exec) or
// p (a forked worker re-parented to us) is set.
type osProcess struct {
	cmd *exec.Cmd
	p   *os.Process
}

func (o *osProcess) proc() *os.Process {
	if o.cmd != nil {
		return o.cmd.Process
	}
	return o.p
}

func (o *osProcess) Pid() int { return o.proc().Pid }

func (o *osProcess) Signal(sig syscall.Signal) error { return o.proc().Signal(sig) }

func (o *osProcess) Wait() exitStatus {
	var st *os.ProcessState
	var err error
	if o.cmd != nil {
		err = o.cmd.Wait()
		st = o.cmd.ProcessState
	} else {
		st, err = o.p.Wait()
	}
	if st == nil {
		return exitStatus{Code: -1, Err: err}
	}
	return statusOf(st)
}

func statusOf(st *os.ProcessState) exitStatus {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitStatus{Code: -1, Signal: ws.Signal()}
	}
	return exitStatus{Code: st.ExitCode()}
}

// waitOrKill waits for p to exit by itself (so an import failure's exit
// code 3 is seen), killing it if it takes longer than grace.
func waitOrKill(p process, grace time.Duration) exitStatus {
	done := make(chan exitStatus, 1)
	go func() { done <- p.Wait() }()
	if grace > 0 {
		select {
		case st := <-done:
			return st
		case <-time.After(grace):
		}
	}
	select {
	case st := <-done:
		return st
	default:
		p.Signal(syscall.SIGKILL)
		return <-done
	}
}

// stderrLog copies a child's stderr into the error log line by line,
// keeping the last tailMax bytes for error messages (a traceback).
type stderrLog struct {
	mu   sync.Mutex
	tail []byte
	done chan struct{}
}

const tailMax = 64 << 10

// childOutput are the write ends of a Python child's stderr and stdout
// pipes. stderr (tracebacks, wsgi.errors) is logged as errors; stdout
// (an app's print()) at info level, marked stream=stdout, where gunicorn
// would have shown it on its terminal or journal.
type childOutput struct {
	stderr, stdout *os.File
	errLog         *stderrLog
}

// startChildOutput makes both pipes, logged with fields.
func startChildOutput(log *zap.Logger, fields ...zap.Field) (childOutput, error) {
	stderr, errLog, err := startStderr(log, fields...)
	if err != nil {
		return childOutput{}, err
	}
	stdout, _, err := startOutput(log, zapcore.InfoLevel, append(fields, zap.String("stream", "stdout"))...)
	if err != nil {
		stderr.Close()
		return childOutput{}, err
	}
	return childOutput{stderr: stderr, stdout: stdout, errLog: errLog}, nil
}

// closeParentEnds closes our copies of the write ends once the child has
// its own, so the readers see EOF when the child (and its forks) exit.
func (o childOutput) closeParentEnds() {
	o.stderr.Close()
	o.stdout.Close()
}

// startStderr makes a pipe whose write end goes to the child; lines read
// from it are logged at error level with fields until every writer has
// closed it.
func startStderr(log *zap.Logger, fields ...zap.Field) (*os.File, *stderrLog, error) {
	return startOutput(log, zapcore.ErrorLevel, fields...)
}

// startOutput is startStderr logging at level.
func startOutput(log *zap.Logger, level zapcore.Level, fields ...zap.Field) (*os.File, *stderrLog, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("output pipe: %w", err)
	}
	s := &stderrLog{done: make(chan struct{})}
	go s.copy(pr, log, level, fields)
	return pw, s, nil
}

func (s *stderrLog) copy(r io.ReadCloser, log *zap.Logger, level zapcore.Level, fields []zap.Field) {
	defer close(s.done)
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	var rec []byte
	for {
		var err error
		rec, err = readRecord(br, rec)
		if len(rec) > 0 || err == nil {
			s.mu.Lock()
			s.tail = append(append(s.tail, rec...), '\n')
			if len(s.tail) > tailMax {
				s.tail = append(s.tail[:0], s.tail[len(s.tail)-tailMax:]...)
			}
			s.mu.Unlock()
			if ce := log.Check(level, string(rec)); ce != nil {
				ce.Write(fields...)
			}
		}
		if err != nil {
			return
		}
	}
}

// Tail returns the last lines written, after waiting up to wait for the
// writers to close (so a traceback printed just before exit is complete).
func (s *stderrLog) Tail(wait time.Duration) string {
	select {
	case <-s.done:
	case <-time.After(wait):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.tail)
}

// freshLauncher starts each worker as a new interpreter (preload off).
type freshLauncher struct{ cfg osLauncherConfig }

func (l *freshLauncher) boot(context.Context) error { return nil }

func (l *freshLauncher) close() {}

func (l *freshLauncher) spawn(ctx context.Context, id int) (spawned, error) {
	conn, theirs, err := socketpair()
	if err != nil {
		return spawned{}, err
	}
	out, err := startChildOutput(l.cfg.log, zap.String("app", l.cfg.app.Name), zap.Int("worker", id))
	if err != nil {
		conn.Close()
		theirs.Close()
		return spawned{}, err
	}
	slog := out.errLog
	cmd, err := l.cfg.command("worker", theirs, out)
	if err == nil {
		err = cmd.Start()
	}
	theirs.Close()
	out.closeParentEnds()
	if err != nil {
		conn.Close()
		return spawned{}, fmt.Errorf("start %s: %w", l.cfg.app.Python, err)
	}
	proc := &osProcess{cmd: cmd}
	rd, next, _, err := readReady(ctx, conn)
	if err != nil {
		conn.Close()
		grace := time.Duration(0)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			grace = 2 * time.Second // it is exiting: let it tell us why
		}
		st := waitOrKill(proc, grace)
		tail := slog.Tail(time.Second)
		if st.Code == exitCodeBootFailed {
			return spawned{}, &BootError{App: l.cfg.app.Name, Traceback: tail}
		}
		return spawned{}, fmt.Errorf("worker not ready (%v; %s): %s", err, st, tail)
	}
	return spawned{conn: conn, rd: rd, next: next, proc: proc}, nil
}

var (
	_ launcher = (*freshLauncher)(nil)
	_ launcher = (*zygoteLauncher)(nil)
	_ launcher = (*commandLauncher)(nil)
	_ process  = (*osProcess)(nil)
)
