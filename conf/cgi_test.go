package conf

import (
	"reflect"
	"testing"
	"time"
)

// TestCGI_Inheritance pins how cgi, cgi_timeout and cgi_env land in the
// model: site lines are defaults for the locations' scripts, a location's
// own cgi_env lines replace the site's set, cgi_timeout is inherited on
// its own, and the handler is inherited only by locations without a
// handler or directory of their own.
func TestCGI_Inheritance(t *testing.T) {
	cfg := mustParse(t, `
site a {
    listen 80;
    root /www;
    cgi_timeout 10s;
    cgi_env LANG C.UTF-8;
    cgi_env APP_MODE prod;
    location /cgi-bin/ { cgi; }
    location /own/ { cgi; cgi_timeout 5s; cgi_env ONLY me; }
    location /aliased/ { alias /www2; cgi; cgi_env PATH /opt/bin; }
    location /files/ { }
}
site b {
    listen 81;
    root /www;
    cgi;
    location /plain/ { }
    location /static/ { root /www2; }
    location @named { return 404; }
    location /slow/ { cgi_timeout 7s; }
}`)
	a := cfg.Sites[0]
	siteEnv := []EnvVar{{"LANG", "C.UTF-8"}, {"APP_MODE", "prod"}}
	if a.Route.CGI != nil || !a.Route.Static {
		t.Errorf("cgi_timeout and cgi_env alone do not make a site run CGI: %+v", a.Route)
	}
	loc := func(s *Site, i int) *CGI { return s.Locations[i].Route.CGI }
	if c := loc(a, 0); c == nil || c.Timeout != 10*time.Second || !reflect.DeepEqual(c.Env, siteEnv) {
		t.Errorf("cgi location takes the site's cgi_timeout and cgi_env: %+v", c)
	}
	if c := loc(a, 1); c == nil || c.Timeout != 5*time.Second || !reflect.DeepEqual(c.Env, []EnvVar{{"ONLY", "me"}}) {
		t.Errorf("own cgi_timeout wins; own cgi_env lines replace the site's set: %+v", c)
	}
	if c, r := loc(a, 2), a.Locations[2].Route; c == nil || r.Alias != "/www2" || c.Timeout != 10*time.Second ||
		!reflect.DeepEqual(c.Env, []EnvVar{{"PATH", "/opt/bin"}}) {
		t.Errorf("cgi under an alias: %+v %+v", r, c)
	}
	if r := a.Locations[3].Route; r.CGI != nil || !r.Static {
		t.Errorf("a location without cgi serves files: %+v", r)
	}

	b := cfg.Sites[1]
	sc := b.Route.CGI
	if sc == nil || sc.Timeout != defaultCGITimeout || sc.Env != nil || b.Route.Static {
		t.Fatalf("site cgi: default timeout 60s, no env, not static: %+v static=%v", sc, b.Route.Static)
	}
	if c := loc(b, 0); c == nil || c == sc || c.Pos != sc.Pos {
		t.Errorf("a location without a handler inherits a copy of the site's cgi: %+v", c)
	}
	if r := b.Locations[1].Route; r.CGI != nil || !r.Static {
		t.Errorf("a location with its own root serves files: %+v", r)
	}
	if r := b.Locations[2].Route; r.CGI != nil {
		t.Errorf("a named location never inherits a handler: %+v", r)
	}
	if c := loc(b, 3); c == nil || c.Timeout != 7*time.Second {
		t.Errorf("an inherited cgi takes the location's own cgi_timeout: %+v", c)
	}
}

// TestCGI_Errors pins the message and position of every cgi error. Site
// bodies start at line 4 (see site()).
func TestCGI_Errors(t *testing.T) {
	const f = "/t/main.conf:"
	cases := []struct {
		name, src string
		want      []string
	}{
		{"no root", "site a { listen 80; location /c/ { cgi; } }",
			[]string{f + `1:36: "cgi" needs a root or alias to find scripts in`}},
		{"no root at site level", "site a { listen 80; cgi; }",
			[]string{f + `1:21: "cgi" needs a root or alias to find scripts in`}},
		{"args", site("cgi on;"), []string{f + `4:1: "cgi" takes no arguments, got 1`}},
		{"cgi and static", site("location / { static; cgi; }"),
			[]string{f + `4:22: "cgi" conflicts with "static" at /t/main.conf:4:14; a block has one handler`}},
		{"cgi and proxy", site("cgi;\nproxy http://a:1;"),
			[]string{f + `5:1: "proxy" conflicts with "cgi" at /t/main.conf:4:1; a block has one handler`}},
		{"cgi and try_files", site("location / { cgi; try_files $uri =404; }"),
			[]string{f + `4:19: "try_files" conflicts with "cgi" at /t/main.conf:4:14; a block has one handler`}},
		{"cgi and return", site("location / { return 204; cgi; }"),
			[]string{f + `4:26: "cgi" conflicts with "return" at /t/main.conf:4:14; a block has one handler`}},
		{"cgi twice", site("cgi;\ncgi;"), []string{f + `5:1: "cgi" is already set in this block at /t/main.conf:4:1`}},
		{"cgi in main", "cgi;", []string{f + `1:1: "cgi" is not allowed in main; allowed in: site, location`}},
		{"cgi_env in app", "app x { wsgi a:b; cgi_env A b; }",
			[]string{f + `1:19: "cgi_env" is not allowed in app; allowed in: site, location`}},

		{"timeout zero", site("cgi;\ncgi_timeout 0;"), []string{f + `5:13: cgi_timeout: must be greater than 0`}},
		{"timeout bad", site("cgi;\ncgi_timeout 1M;"),
			[]string{f + `5:13: cgi_timeout: expected a duration like 30s or 5m, got "1M"`}},
		{"timeout twice", site("cgi;\ncgi_timeout 1s;\ncgi_timeout 2s;"),
			[]string{f + `6:1: "cgi_timeout" is already set in this block at /t/main.conf:5:1`}},
		{"env bad key", site("cgi;\ncgi_env 1A b;"),
			[]string{f + `5:9: cgi_env: invalid variable name "1A": want letters, digits and "_", not starting with a digit`}},
		{"env dup key", site("cgi;\ncgi_env A 1;\ncgi_env A 2;"),
			[]string{f + `6:9: cgi_env A is already set in this block at /t/main.conf:5:9`}},
		{"env one arg", site("cgi;\ncgi_env A;"), []string{f + `5:1: "cgi_env" takes 2 arguments, got 1`}},

		// cgi_timeout and cgi_env without cgi in effect
		{"location without cgi", site("location /x/ { cgi_timeout 5s; cgi_env A b; cgi_env C d; }"),
			[]string{
				f + `4:16: "cgi_timeout" has no effect without "cgi" in this location or inherited from its site`,
				f + `4:32: "cgi_env" has no effect without "cgi" in this location or inherited from its site`,
			}},
		{"site without any cgi", site("cgi_timeout 5s;\nlocation /x/ { static; }"),
			[]string{f + `4:1: "cgi_timeout" has no effect without "cgi" in this site or any of its locations`}},
		{"site env without any cgi", site("cgi_env A b;"),
			[]string{f + `4:1: "cgi_env" has no effect without "cgi" in this site or any of its locations`}},
		{"own root does not inherit cgi", site("cgi;\nlocation /x/ { root /www2; cgi_timeout 5s; }"),
			[]string{f + `5:28: "cgi_timeout" has no effect without "cgi" in this location or inherited from its site`}},
		{"named location does not inherit cgi", site("cgi;\nlocation @x { cgi_env A b; }"),
			[]string{f + `5:15: "cgi_env" has no effect without "cgi" in this location or inherited from its site`}},
		{"inherited cgi is in effect", site("cgi;\nlocation /x/ { cgi_timeout 5s; }"), nil},
		{"site lines for a location's cgi", site("cgi_env A b;\nlocation /x/ { cgi; }"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want...) })
	}
}
