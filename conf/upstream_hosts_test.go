package conf

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestUpstreamHosts_NamesNotAddresses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tandem.conf")
	src := `upstream app {
    server http://app1.internal:8000;
    server http://10.0.0.2:8000 backup;
}
site a {
    listen 127.0.0.1:8080;
    location / { proxy app; }
    location /u { proxy uwsgi://py.internal:3031 unix:/run/app.sock http://[::1]:9000; }
    location /s { proxy https://api.example.com:443; }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range cfg.UpstreamHosts() {
		got = append(got, h.Host)
		if h.Pos.Line == 0 || h.Pos.File != path {
			t.Errorf("%s: no position (%+v)", h.Host, h.Pos)
		}
	}
	want := []string{"app1.internal", "py.internal", "api.example.com"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hosts %q, want %q", got, want)
	}
}

// Timeouts next to an inline proxy apply to it; the defaults stay for
// the others.
func TestInlineProxyTimeouts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tandem.conf")
	src := `site a {
    listen 127.0.0.1:8080;
    location /slow/ { read_timeout 5m; proxy http://127.0.0.1:8000; first_byte_timeout 2m; }
    location / { proxy http://127.0.0.1:8000; }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][3]time.Duration{}
	for _, l := range cfg.Sites[0].Locations {
		u := l.Route.Proxy.Upstream
		got[l.Path] = [3]time.Duration{u.ConnectTimeout, u.FirstByteTimeout, u.ReadTimeout}
	}
	want := map[string][3]time.Duration{
		"/slow/": {5 * time.Second, 2 * time.Minute, 5 * time.Minute},
		"/":      {5 * time.Second, 60 * time.Second, 60 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("timeouts %v, want %v", got, want)
	}
}
