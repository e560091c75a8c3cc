package conf

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
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
