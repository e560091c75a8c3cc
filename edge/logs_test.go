package edge

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tandem-server/tandem/conf"
)

// An access log that a reload removes from the config is closed once the
// old config is released; one that stays is kept open.
func TestLogFiles_ReloadClosesRemovedAccessLog(t *testing.T) {
	config := func(logs ...string) string {
		var b strings.Builder
		b.WriteString("shutdown_timeout 10ms;\n")
		for i, l := range logs {
			b.WriteString("site s" + string(rune('a'+i)) + " { listen 127.0.0.1:0; access_log {{DIR}}/" + l + "; return 200 ok; }\n")
		}
		return b.String()
	}
	s, dir := newTestServer(t, config("keep.log", "drop.log"), nil)
	isOpen := func(name string) bool {
		s.logs.mu.Lock()
		defer s.logs.mu.Unlock()
		_, ok := s.logs.files[filepath.Join(dir, name)]
		return ok
	}
	if !isOpen("keep.log") || !isOpen("drop.log") {
		t.Fatal("access logs not opened")
	}
	cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(strings.ReplaceAll(config("keep.log"), "{{DIR}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for isOpen("drop.log") {
		if time.Now().After(deadline) {
			t.Fatal("the removed access log is still open after the old config was released")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !isOpen("keep.log") {
		t.Fatal("the access log that stayed in the config was closed")
	}
}

// A log on a full disk (/dev/full) never fails a write to zap, and so
// never a request: the entries are dropped and reported once per
// failReportEvery on standard error, not once each; when writes work
// again, that is reported with the count.
func TestLogFiles_FullDiskReportedNotFlooded(t *testing.T) {
	core, alerts := observer.New(zap.DebugLevel)
	files := NewLogFiles()
	files.alert = zap.New(core)
	w, err := files.Writer("/dev/full")
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer files.Close()
	for i := range 100 {
		if n, err := w.Write([]byte("entry\n")); err != nil || n != 6 {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	failed := alerts.FilterMessage("cannot write log; entries are dropped until it works again").All()
	if len(failed) != 1 {
		t.Fatalf("%d failure reports for 100 failed writes, want 1: %v", len(failed), alerts.All())
	}
	if f := failed[0].ContextMap(); f["log"] != "/dev/full" || !strings.Contains(f["error"].(string), "no space left") {
		t.Errorf("report fields %v", f)
	}

	// The disk has room again (the file now points somewhere writable).
	rf := w.(*reopenFile)
	rf.path = filepath.Join(t.TempDir(), "access.log")
	if err := rf.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("entry\n")); err != nil {
		t.Fatal(err)
	}
	back := alerts.FilterMessage("log writes work again").All()
	if len(back) != 1 || back[0].ContextMap()["dropped"] != int64(100) {
		t.Fatalf("recovery report: %v", alerts.All())
	}
}
