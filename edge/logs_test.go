package edge

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

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
