package appserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// runtimeDirPrefix names the private runtime directories tandem makes
// under $TMPDIR: "tandem-<pid>-<random>" (the pid is for the operator).
const runtimeDirPrefix = "tandem-"

// lockName is the file in a runtime directory its tandem holds an
// exclusive flock on for as long as it runs. The kernel drops the lock
// when the process dies however it dies (kill -9, the OOM killer, a
// crash: no Shutdown ran to remove the directory), so a lock that can be
// taken marks a directory left behind. Unlike a pid check this holds
// across pid namespaces sharing one /tmp.
const lockName = ".lock"

// runtimeDir is this process's runtime directory and the locks that mark
// it as in use.
type runtimeDir struct {
	path string
	lock *os.File // lockName inside, exclusive: for sweepRuntimeDirs
	// The directory itself, shared: systemd-tmpfiles skips a directory
	// it cannot lock exclusively, so a /tmp cleaned by age (Fedora's is,
	// after 10 days) keeps the sockets and the adapter script of a
	// tandem that has run that long without respawning a worker.
	dirLock *os.File
}

// makeRuntimeDir creates this process's runtime directory (mode 0700),
// after removing those that dead tandem processes of the same user left.
func makeRuntimeDir(log *zap.Logger) (*runtimeDir, error) {
	tmp := os.TempDir()
	sweepRuntimeDirs(tmp, log)
	dir, err := os.MkdirTemp(tmp, fmt.Sprintf("%s%d-", runtimeDirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("runtime dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			lock.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runtime dir: lock: %w", err)
	}
	dirLock, err := os.Open(dir)
	if err == nil {
		err = syscall.Flock(int(dirLock.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err != nil {
			dirLock.Close()
		}
	}
	if err != nil {
		lock.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runtime dir: lock the directory: %w", err)
	}
	return &runtimeDir{path: dir, lock: lock, dirLock: dirLock}, nil
}

// remove deletes the directory, then lets go of its lock.
func (d *runtimeDir) remove() error {
	err := os.RemoveAll(d.path)
	return errors.Join(err, d.lock.Close(), d.dirLock.Close())
}

// sweepRuntimeDirs removes tmp's tandem runtime directories that are
// owned by this user and whose lock nobody holds. Anything else — another
// user's, a locked one, one without a lock file (made by an older
// tandem) — is left alone.
func sweepRuntimeDirs(tmp string, log *zap.Logger) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	uid := uint32(os.Geteuid())
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), runtimeDirPrefix) {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uid || !fi.IsDir() {
			continue
		}
		if !abandoned(path) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			log.Warn("cannot remove a runtime dir left by a stopped tandem", zap.String("dir", path), zap.Error(err))
			continue
		}
		log.Info("removed a runtime dir left by a tandem that did not stop cleanly", zap.String("dir", path))
	}
}

// abandoned reports whether dir has a lock file that can be locked now.
// The probe's lock is dropped on return; a tandem starting this instant
// makes its own, new directory, so none can be taking this one.
func abandoned(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
