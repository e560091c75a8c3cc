package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-server/tandem/conf"
)

// pidFile is the running instance's pid file; remove deletes it only if it
// still holds our pid, so a second instance's file is never removed.
//
// The instance holds an exclusive flock on the file for as long as it
// runs. The kernel drops it however the process ends, so a locked pid file
// is a running tandem, and an unlocked one is stale even when its pid has
// been reused by another program since (after kill -9 or a crash): stop
// and reload then refuse instead of signalling a stranger, and run starts
// instead of claiming tandem is already running.
type pidFile struct {
	path string
	lock *os.File
}

func writePIDFile(path string) (*pidFile, error) {
	if path == "" {
		return &pidFile{}, nil
	}
	if pid, err := readPID(path); err == nil && pid != os.Getpid() && alive(pid) && pidFileLocked(path) {
		return nil, fmt.Errorf("pid file %s: tandem is already running as pid %d", path, pid)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	// Written and locked under a temporary name, then renamed: readers
	// never see a partial pid, and the lock travels with the file.
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		_, err = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return &pidFile{path: path, lock: f}, nil
}

func (p *pidFile) remove() {
	if p.path == "" {
		return
	}
	if pid, err := readPID(p.path); err == nil && pid == os.Getpid() {
		_ = os.Remove(p.path)
	}
	_ = p.lock.Close()
}

// pidFileLocked reports whether a running tandem holds path's lock.
func pidFileLocked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == syscall.EWOULDBLOCK
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s does not hold a pid", path)
	}
	return pid, nil
}

// alive reports whether pid runs. A zombie (exited, not yet reaped by its
// parent) counts as gone: its sockets are already closed.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state letter follows the parenthesised command name.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// controlTarget finds the pid to signal from --pid, or the config's
// pid_file, or the default pid file.
func controlTarget(name string, args []string, stdout, stderr io.Writer) (int, int, bool) {
	fs := newFlags(name, "[-c FILE | --pid PIDFILE]", stdout, stderr)
	cfgPath := fs.String("c", "", "config `FILE` whose pid_file names the running instance")
	pidPath := fs.String("pid", "", "`PIDFILE` of the running instance (overrides -c)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return 0, code, false
	}
	path := *pidPath
	if path == "" && *cfgPath != "" {
		cfg, err := conf.Load(*cfgPath)
		if err != nil {
			printConfigErrors(stderr, err)
			return 0, 1, false
		}
		path = cfg.PIDFile
	}
	if path == "" {
		path = conf.DefaultPIDFile()
	}
	pid, err := readPID(path)
	if err != nil {
		fmt.Fprintf(stderr, "tandem %s: no running instance: %v\n", name, err)
		return 0, 1, false
	}
	if !alive(pid) {
		fmt.Fprintf(stderr, "tandem %s: pid %d from %s is not running (stale pid file)\n", name, pid, path)
		return 0, 1, false
	}
	if !pidFileLocked(path) {
		fmt.Fprintf(stderr, "tandem %s: pid %d from %s is not tandem: no tandem holds that pid file (stale, and the pid was reused); nothing signalled\n", name, pid, path)
		return 0, 1, false
	}
	return pid, 0, true
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	pid, code, ok := controlTarget("reload", args, stdout, stderr)
	if !ok {
		return code
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		fmt.Fprintf(stderr, "tandem reload: signal pid %d: %v\n", pid, err)
		return 1
	}
	fmt.Fprintf(stdout, "reload requested (pid %d); the error log says whether the new config was taken\n", pid)
	return 0
}

func cmdStop(args []string, stdout, stderr io.Writer) int {
	pid, code, ok := controlTarget("stop", args, stdout, stderr)
	if !ok {
		return code
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		fmt.Fprintf(stderr, "tandem stop: signal pid %d: %v\n", pid, err)
		return 1
	}
	// Wait so scripts can rely on the port being free when stop returns;
	// the instance itself bounds its drain by shutdown_timeout.
	deadline := time.Now().Add(2 * time.Minute)
	for alive(pid) {
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "tandem stop: pid %d still running after 2m\n", pid)
			return 1
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "stopped (pid %d)\n", pid)
	return 0
}
