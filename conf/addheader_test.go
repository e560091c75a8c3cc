package conf

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// A location's own add_header lines replace its site's, as in nginx;
// one without any inherits the site's.
func TestAddHeader_Inheritance(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tandem.conf")
	src := `site a {
    listen 127.0.0.1:8080;
    root ` + dir + `;
    add_header X-Frame-Options DENY always;
    add_header x-site yes;
    location /plain/ { }
    location /assets/ { add_header Cache-Control "public, max-age=31536000"; }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	site := []AddHeader{{Name: "X-Frame-Options", Value: "DENY", Always: true}, {Name: "X-Site", Value: "yes"}}
	want := map[string][]AddHeader{
		"/plain/":  site,
		"/assets/": {{Name: "Cache-Control", Value: "public, max-age=31536000"}},
	}
	for _, l := range cfg.Sites[0].Locations {
		if got := l.Route.AddHeaders; !reflect.DeepEqual(got, want[l.Path]) {
			t.Errorf("%s: %+v, want %+v", l.Path, got, want[l.Path])
		}
	}
	if got := cfg.Sites[0].Route.AddHeaders; !reflect.DeepEqual(got, site) {
		t.Errorf("site: %+v, want %+v", got, site)
	}
}
