package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A user file is parsed when the config loads: a bad line is a config
// error naming the directive's position and the file's line; auth_basic
// with no user file anywhere is an error.
func TestAuthBasic_Errors(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("ann:{PLAIN}x\nbad line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tandem.conf")
	src := `site a {
    listen 127.0.0.1:8080;
    return 200;
    location /a/ { auth_basic "A"; auth_basic_user_file users; }
    location /b/ { auth_basic "B"; }
    location /c/ { auth_basic "C"; auth_basic_user_file missing; }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("want errors")
	}
	got := err.Error()
	if n := strings.Count(got, "\n") + 1; n != 3 {
		t.Errorf("%d errors, want 3 (a bad or missing file is not also a missing directive):\n%s", n, got)
	}
	for _, want := range []string{
		path + ":4:57: auth_basic_user_file: " + users + ": line 2: expected user:hash",
		path + ":5:20: auth_basic needs auth_basic_user_file, in this block or its site",
		path + ":6:57: auth_basic_user_file: cannot read user file: open " + filepath.Join(dir, "missing") + ": no such file or directory",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}
