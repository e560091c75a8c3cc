package appserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/tandem-server/tandem/conf"
)

// commandLauncher runs one generation of a `command ARG...;` app: each
// worker is the command itself, exec'd (no shell) in its own process
// group, told where to listen by $TANDEM_SOCKET (a unix socket in the
// private runtime dir) and/or $PORT (a free loopback TCP port), and ready
// once that address accepts a connection. Requests then reach it over
// HTTP/1.1 (command_proxy.go).
type commandLauncher struct {
	cfg osLauncherConfig

	// Set by boot, read-only afterwards.
	prog    string     // the program, resolved
	listen  listenMode // which of $TANDEM_SOCKET and $PORT it is given
	sockDir string     // where its unix sockets go

	// everReady is set once a worker of this generation got ready. Until
	// then a worker that fails to get ready fails the generation (a
	// *BootError: Start or Reload reports it and the old generation keeps
	// serving); afterwards it is a crash, respawned with backoff.
	everReady atomic.Bool
}

// listenMode says which addresses a command worker is given.
type listenMode uint8

const (
	listenUnix listenMode = 1 << iota // $TANDEM_SOCKET
	listenTCP                         // $PORT
)

// Names of the variables tandem sets and expands for command workers.
const (
	envSocket = "TANDEM_SOCKET"
	envPort   = "PORT"
)

// commandReadyTimeout bounds a command worker's start: it must accept a
// connection within this time or it is killed.
const commandReadyTimeout = 30 * time.Second

// maxSocketPath is the longest unix socket path Linux takes (sun_path is
// 108 bytes with the terminating NUL).
const maxSocketPath = 107

func (l *commandLauncher) boot(context.Context) error {
	app := l.cfg.app
	prog, err := resolveProgram(app.Command[0], app.Chdir)
	if err != nil {
		return fmt.Errorf("command %s: %w", app.Command[0], err)
	}
	l.prog = prog
	l.listen = listenModeOf(app)
	if app.User != "" || app.Group != "" {
		if l.cfg.cred, err = lookupCredential(app.User, app.Group); err != nil {
			return err
		}
	}
	if l.listen&listenUnix != 0 {
		return l.makeSockDir()
	}
	return nil
}

// makeSockDir creates the app's socket directory in the runtime dir. A
// worker running as another user owns its directory, and the runtime dir
// becomes traversable (0711: still not listable) so it can reach it.
func (l *commandLauncher) makeSockDir() error {
	l.sockDir = filepath.Join(l.cfg.runtimeDir, "app-"+l.cfg.app.Name)
	if n := len(l.socketPath(1 << 20)); n > maxSocketPath {
		return fmt.Errorf("socket path %s is %d bytes, over the %d Linux allows: use a shorter runtime directory or app name",
			l.socketPath(1<<20), n, maxSocketPath)
	}
	if err := os.MkdirAll(l.sockDir, 0o700); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	if c := l.cfg.cred; c != nil {
		if err := os.Chown(l.sockDir, int(c.Uid), int(c.Gid)); err != nil {
			return fmt.Errorf("socket dir: %w", err)
		}
		if err := os.Chmod(l.cfg.runtimeDir, 0o711); err != nil {
			return fmt.Errorf("runtime dir: %w", err)
		}
	}
	return nil
}

func (l *commandLauncher) socketPath(id int) string {
	return filepath.Join(l.sockDir, "w"+strconv.Itoa(id)+".sock")
}

// close has nothing to stop: a command generation has no zygote, and its
// workers are the arbiter's.
func (l *commandLauncher) close() {}

// spawn starts worker id and returns once it accepts connections.
func (l *commandLauncher) spawn(ctx context.Context, id int) (spawned, error) {
	app := l.cfg.app
	targets, vars, err := l.addresses(id)
	if err != nil {
		return spawned{}, err
	}
	out, outLog, err := startOutput(l.cfg.log, zapcore.InfoLevel, zap.String("app", app.Name), zap.Int("worker", id))
	if err != nil {
		return spawned{}, err
	}
	cmd := l.command(vars, out)
	err = cmd.Start()
	out.Close()
	if err != nil {
		l.removeSocket(targets)
		return spawned{}, fmt.Errorf("start %s: %w", l.prog, err)
	}
	proc := watchCommand(cmd, func() { l.removeSocket(targets) })
	target, err := waitListening(ctx, targets, proc.done, commandReadyTimeout)
	if err != nil {
		proc.Signal(syscall.SIGKILL)
		st := proc.Wait()
		if ctx.Err() != nil {
			return spawned{}, ctx.Err()
		}
		msg := fmt.Sprintf("worker %d (pid %d) %v (%s); its last output:\n%s",
			id, proc.Pid(), err, st, outLog.Tail(time.Second))
		if !l.everReady.Load() {
			return spawned{}, &BootError{App: app.Name, Traceback: msg, command: true}
		}
		return spawned{}, errors.New(msg)
	}
	l.everReady.Store(true)
	return spawned{http: newBackend(target, app, l.cfg.log, id), proc: proc}, nil
}

// addresses picks worker id's listening addresses and the values of the
// variables that name them.
func (l *commandLauncher) addresses(id int) ([]target, map[string]string, error) {
	vars := make(map[string]string, 2)
	var targets []target
	if l.listen&listenUnix != 0 {
		path := l.socketPath(id)
		// A socket left by a worker that was not reaped in time would make
		// bind fail with EADDRINUSE.
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("stale socket: %w", err)
		}
		vars[envSocket] = path
		targets = append(targets, target{"unix", path})
	}
	if l.listen&listenTCP != 0 {
		port, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		vars[envPort] = strconv.Itoa(port)
		targets = append(targets, target{"tcp", net.JoinHostPort("127.0.0.1", vars[envPort])})
	}
	return targets, vars, nil
}

// command builds the worker's exec.Cmd: the arguments and env values with
// $TANDEM_SOCKET and $PORT expanded, both variables set, stdout and
// stderr into out, its own process group.
func (l *commandLauncher) command(vars map[string]string, out *os.File) *exec.Cmd {
	app := l.cfg.app
	args := make([]string, len(app.Command)-1)
	for i, a := range app.Command[1:] {
		args[i] = expandVars(a, vars)
	}
	cmd := exec.Command(l.prog, args...)
	cmd.Args[0] = app.Command[0] // argv[0] as written
	cmd.Dir = app.Chdir
	cmd.Env = os.Environ()
	for _, e := range app.Env {
		cmd.Env = append(cmd.Env, e.Key+"="+expandVars(e.Value, vars))
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Real files, not io.Writers: Wait must not wait for grandchildren
	// that inherited the pipe.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group, so the whole group can be signalled: children
		// (a shell's, a Node cluster's) stop and die with it.
		Setpgid: true,
		// If tandem itself dies without stopping it, nothing would ever
		// use it again.
		Pdeathsig:  syscall.SIGKILL,
		Credential: l.cfg.cred,
	}
	return cmd
}

func (l *commandLauncher) removeSocket(targets []target) {
	for _, t := range targets {
		if t.network == "unix" {
			os.Remove(t.addr)
		}
	}
}

// resolveProgram finds the program as exec would, a relative path (one
// with a slash) being relative to the app's directory, so that a missing
// program fails the boot instead of every spawn.
func resolveProgram(name, dir string) (string, error) {
	if !strings.Contains(name, "/") {
		return exec.LookPath(name)
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", name)
	}
	return name, nil
}

// listenModeOf decides what a command is told: $TANDEM_SOCKET when its
// arguments or env values mention it, else $PORT when they mention that;
// a command that mentions neither (it reads the environment itself, like
// a Node server reading process.env.PORT) gets both and may listen on
// either.
func listenModeOf(app *conf.App) listenMode {
	var m listenMode
	note := func(s string) {
		expandVarsFunc(s, func(name string) (string, bool) {
			switch name {
			case envSocket:
				m |= listenUnix
			case envPort:
				m |= listenTCP
			}
			return "", false
		})
	}
	for _, a := range app.Command[1:] {
		note(a)
	}
	for _, e := range app.Env {
		note(e.Value)
	}
	switch {
	case m&listenUnix != 0:
		return listenUnix
	case m&listenTCP != 0:
		return listenTCP
	}
	return listenUnix | listenTCP
}

// expandVars replaces $NAME and ${NAME} for the names in vars; any other
// $ is left as written, since no shell is involved.
func expandVars(s string, vars map[string]string) string {
	return expandVarsFunc(s, func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	})
}

func expandVarsFunc(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		i += j
		name, n := varAt(s[i:])
		if v, ok := lookup(name); ok && n > 0 {
			b.WriteString(v)
		} else {
			n = max(n, 1)
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// varAt parses the variable reference at the start of s ("$NAME" or
// "${NAME}"); n is its length, 0 when it is not one.
func varAt(s string) (name string, n int) {
	if strings.HasPrefix(s, "${") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0
		}
		return s[2:end], end + 1
	}
	n = 1
	for n < len(s) && (s[n] == '_' || 'a' <= s[n] && s[n] <= 'z' || 'A' <= s[n] && s[n] <= 'Z' || '0' <= s[n] && s[n] <= '9') {
		n++
	}
	if n == 1 {
		return "", 0
	}
	return s[1:n], n
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the worker binds it; the worker then fails to start and
// is respawned with another.
func freePort() (int, error) {
	// Bound, never listening: a listener here, even for a moment, would
	// accept the readiness check of a worker spawned alongside that got
	// the same port a moment before, and a worker that never listened
	// was taken as ready (TestCommand_StartFailures, under load).
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("free port: %w", os.NewSyscallError("socket", err))
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return 0, fmt.Errorf("free port: %w", os.NewSyscallError("bind", err))
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return 0, fmt.Errorf("free port: %w", os.NewSyscallError("getsockname", err))
	}
	return sa.(*syscall.SockaddrInet4).Port, nil
}

// target is an address a command worker listens on.
type target struct{ network, addr string }

// waitListening polls targets until one accepts a connection, the process
// exits (exited closes), ctx ends, or within passes.
func waitListening(ctx context.Context, targets []target, exited <-chan struct{}, within time.Duration) (target, error) {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	delay := time.Millisecond
	for {
		for _, t := range targets {
			if c, err := net.DialTimeout(t.network, t.addr, time.Second); err == nil {
				c.Close()
				return t, nil
			}
		}
		tick := time.NewTimer(delay)
		select {
		case <-exited:
			tick.Stop()
			return target{}, fmt.Errorf("exited before it listened on %s", describe(targets))
		case <-ctx.Done():
			tick.Stop()
			return target{}, ctx.Err()
		case <-deadline.C:
			tick.Stop()
			return target{}, fmt.Errorf("not listening on %s after %v", describe(targets), within)
		case <-tick.C:
		}
		delay = min(2*delay, 25*time.Millisecond)
	}
}

func describe(targets []target) string {
	s := make([]string, len(targets))
	for i, t := range targets {
		if t.network == "unix" {
			s[i] = "$" + envSocket + " (" + t.addr + ")"
		} else {
			s[i] = "$" + envPort + " (" + t.addr + ")"
		}
	}
	return strings.Join(s, " or ")
}

// cmdProcess is a command worker: the leader of its own process group.
// Signals go to the whole group. A watcher waits for the leader without
// reaping it first (WNOWAIT), so while it kills what is left of the group
// the group id cannot have been reused; then it reaps.
type cmdProcess struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once reaped
	st   exitStatus    // valid after done

	mu   sync.Mutex
	gone bool // the leader has exited: signal nothing any more (guarded by mu)
}

func watchCommand(cmd *exec.Cmd, reaped func()) *cmdProcess {
	p := &cmdProcess{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go p.watch(reaped)
	return p
}

func (p *cmdProcess) watch(reaped func()) {
	var info unix.Siginfo
	var err error
	for {
		err = unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	p.mu.Lock()
	if err == nil {
		// Still a zombie, so the group id is still ours: its children
		// die with it.
		syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	p.gone = true
	p.mu.Unlock()
	p.st = (&osProcess{cmd: p.cmd}).Wait()
	reaped()
	close(p.done)
}

func (p *cmdProcess) Pid() int { return p.pid }

// Signal signals the worker's process group (the worker alone if it left
// the group), never after the worker exited.
func (p *cmdProcess) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return os.ErrProcessDone
	}
	err := syscall.Kill(-p.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = syscall.Kill(p.pid, sig)
	}
	return err
}

func (p *cmdProcess) Wait() exitStatus {
	<-p.done
	return p.st
}

var _ process = (*cmdProcess)(nil)
