package appserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
)

// TestRuntimeDir_SweepsOnlyAbandoned: the directory of a process that
// died without cleaning up (kill -9) is removed when the next tandem
// makes its own; a live process's directory, a directory without a lock
// file and other names stay.
func TestRuntimeDir_SweepsOnlyAbandoned(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	live, err := makeRuntimeDir(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}

	// A directory whose lock was held by a process that is now dead: the
	// kernel released its lock when it was killed.
	abandonedDir := filepath.Join(tmp, "tandem-999999-abc")
	must(t, os.MkdirAll(filepath.Join(abandonedDir, "app-x"), 0o700))
	lockFile := filepath.Join(abandonedDir, lockName)
	must(t, os.WriteFile(lockFile, nil, 0o600))
	holder := exec.Command("/usr/bin/flock", "--exclusive", lockFile, "/bin/true")
	if out, err := holder.CombinedOutput(); err != nil {
		t.Fatalf("flock: %v: %s", err, out)
	}
	noLock := filepath.Join(tmp, "tandem-old-style")
	must(t, os.MkdirAll(noLock, 0o700))
	other := filepath.Join(tmp, "other-dir")
	must(t, os.MkdirAll(other, 0o700))

	next, err := makeRuntimeDir(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer next.remove()

	if _, err := os.Stat(abandonedDir); !os.IsNotExist(err) {
		t.Errorf("abandoned runtime dir still there (%v)", err)
	}
	for _, p := range []string{live.path, noLock, other, next.path} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(p), err)
		}
	}
	if !strings.HasPrefix(filepath.Base(next.path), "tandem-") {
		t.Errorf("runtime dir %s: want a tandem- name", next.path)
	}
	fi, err := os.Stat(next.path)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("runtime dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	// systemd-tmpfiles skips a directory it cannot lock exclusively;
	// tandem's is not free to take while tandem runs.
	probe, err := os.Open(next.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(probe.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Error("the runtime dir itself is not locked: an age-based /tmp cleaner would not skip it")
	}
	probe.Close()
	must(t, live.remove())
	if _, err := os.Stat(live.path); !os.IsNotExist(err) {
		t.Errorf("remove left %s (%v)", live.path, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
