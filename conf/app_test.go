package conf

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// app wraps body in an app block named blog whose body starts at line 2,
// column 1.
func app(body string) string {
	return "app blog {\n" + body + "\n}\n"
}

// mustParseFiles is mustParse with extra in-memory files.
func mustParseFiles(t *testing.T, src string, files map[string]string) *Config {
	t.Helper()
	cfg, errs := parseMem(src, files)
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v\nsource:\n%s", errs, src)
	}
	return cfg
}

// TestAppDirectives_Good pins how every app directive lands in the model.
func TestAppDirectives_Good(t *testing.T) {
	cfg := mustParseFiles(t, `
app blog {
    wsgi blog.wsgi:application;
    python venv/bin/python;
    chdir /www;
    env DJANGO_SETTINGS_MODULE blog.settings;
    env EMPTY "";
    workers 4;
    min_workers 2;
    max_workers 8;
    timeout 1m;
    graceful_timeout 10s;
    max_requests 1000 jitter 100;
    max_lifetime 1h jitter 5m;
    max_memory 512m;
    preload off;
    pipeline off;
    cpu_scheduling normal;
    queue 64 timeout 5s;
    user www-data;
    group 33;
}
app factory { wsgi app:create_app(); python python3.12; max_requests 0; max_lifetime 0; }
`, map[string]string{"/t/venv/bin/python": ""})
	if len(cfg.Apps) != 2 {
		t.Fatalf("got %d apps, want 2", len(cfg.Apps))
	}
	a := *cfg.Apps[0]
	a.dir, a.preloadSet, a.pos = "", false, appPos{}
	want := App{
		Pos: Pos{File: "/t/main.conf", Line: 2, Col: 1}, Name: "blog",
		WSGI: "blog.wsgi:application", Python: "/t/venv/bin/python", Chdir: "/www",
		Env:     []EnvVar{{"DJANGO_SETTINGS_MODULE", "blog.settings"}, {"EMPTY", ""}},
		Workers: 4, MinWorkers: 2, MaxWorkers: 8,
		Timeout: time.Minute, GracefulTimeout: 10 * time.Second,
		MaxRequests: 1000, MaxRequestsJitter: 100,
		MaxLifetime: time.Hour, MaxLifetimeJitter: 5 * time.Minute,
		MaxMemory: 512 << 20, Preload: false, NoPipeline: true, NormalScheduling: true, Queue: 64, QueueTimeout: 5 * time.Second,
		User: "www-data", Group: "33",
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("app =\n  %+v\nwant\n  %+v", a, want)
	}
	f := cfg.Apps[1]
	if f.WSGI != "app:create_app()" || f.Python != "python3.12" || f.MaxRequests != 0 || f.MaxLifetime != 0 || !f.Preload || f.NoPipeline || f.NormalScheduling {
		t.Errorf("factory app = %+v (a bare python name stays a PATH lookup)", f)
	}
}

// TestAppTargets pins which MODULE:CALLABLE spellings wsgi accepts.
func TestAppTargets(t *testing.T) {
	for _, ok := range []string{"app:app", "blog.wsgi:application", "_a.b_1:c.d", "app:create_app()", "m:obj.factory()"} {
		mustParse(t, app("wsgi "+ok+";"))
	}
	for _, bad := range []string{"blog", "blog.wsgi", ":app", "app:", "a..b:c", "1a:b", "a:b(1)", "a:b()()", "a:b:c", "a-b:c", "a/b:c", "a: b"} {
		wantErrors(t, app("wsgi \""+bad+"\";"),
			`/t/main.conf:2:6: wsgi: expected MODULE:CALLABLE like blog.wsgi:application, got "`+bad+`"`)
	}
}

// TestAppDefaults pins every app default documented in model.go.
func TestAppDefaults(t *testing.T) {
	cfg := mustParse(t, "app blog { wsgi blog.wsgi:application; }")
	a := cfg.Apps[0]
	w := defaultWorkers()
	if a.Python != "python3" || a.Chdir != "/t" || a.Workers != w || a.MinWorkers != w || a.MaxWorkers != w ||
		a.Timeout != 30*time.Second || a.GracefulTimeout != 30*time.Second || !a.Preload ||
		a.Queue != 1024 || a.QueueTimeout != 30*time.Second || a.MaxRequests != 0 || a.MaxLifetime != 0 ||
		a.MaxMemory != 0 || a.Env != nil || a.User != "" || a.Group != "" || a.NoPipeline || a.NormalScheduling {
		t.Errorf("app defaults %+v", a)
	}

	// /usr/bin/python3 is preferred when it exists.
	cfg = mustParseFiles(t, "app blog { wsgi b:a; }", map[string]string{"/usr/bin/python3": ""})
	if got := cfg.Apps[0].Python; got != "/usr/bin/python3" {
		t.Errorf("python = %q, want /usr/bin/python3 when it exists", got)
	}

	// chdir defaults to the directory of the file the block is in, and a
	// relative chdir resolves against that file too.
	cfg = mustParseFiles(t, "include apps/*.conf;", map[string]string{
		"/t/apps/blog.conf": "app blog { wsgi b:a; }\napp shop { wsgi s:a; chdir ../www; }",
	})
	if cfg.Apps[0].Chdir != "/t/apps" || cfg.Apps[1].Chdir != "/t/www" {
		t.Errorf("chdir = %q, %q; want /t/apps, /t/www", cfg.Apps[0].Chdir, cfg.Apps[1].Chdir)
	}

	// Unset worker counts follow the ones that are set.
	for _, c := range []struct {
		body          string
		wrk, min, max int
	}{
		{"workers 3;", 3, 3, 3},
		{"workers 3; max_workers 6;", 3, 3, 6},
		{"workers 3; min_workers 1;", 3, 1, 3},
		{"min_workers 1000; max_workers 2000;", 1000, 1000, 2000},
		{"max_workers 1;", 1, 1, 1},
		{"min_workers 1; max_workers 1000;", w, 1, 1000},
	} {
		a := mustParse(t, app("wsgi b:a; "+c.body)).Apps[0]
		if a.Workers != c.wrk || a.MinWorkers != c.min || a.MaxWorkers != c.max {
			t.Errorf("%s: workers %d min %d max %d, want %d %d %d", c.body, a.Workers, a.MinWorkers, a.MaxWorkers, c.wrk, c.min, c.max)
		}
	}
	// preload on stays on; an explicit off is not defaulted back.
	if a := mustParse(t, app("wsgi b:a; preload on;")).Apps[0]; !a.Preload {
		t.Error("preload on")
	}
}

// TestAppDirectiveErrors pins the message and position of every
// per-directive app error. App bodies start at line 2, column 1.
func TestAppDirectiveErrors(t *testing.T) {
	const f = "/t/main.conf:"
	cases := []struct {
		name, src string
		want      []string
	}{
		{"no entry point", "app blog { workers 2; }", []string{f + `1:1: app "blog" needs one of wsgi, asgi or command`}},
		{"bad entry point is not also missing", app("wsgi blog;"), []string{f + `2:6: wsgi: expected MODULE:CALLABLE like blog.wsgi:application, got "blog"`}},
		{"app without block", "app blog;", []string{f + `1:1: "app" needs a { ... } block`}},
		{"app without name", "app { wsgi b:a; }", []string{f + `1:1: "app" takes 1 argument, got 0`}},
		{"app two names", "app a b { wsgi b:a; }", []string{f + `1:1: "app" takes 1 argument, got 2`}},
		{"bad app name", "app b/log { wsgi b:a; }", []string{f + `1:5: invalid app name "b/log": use letters, digits, "_", "-" and "."`}},
		{"app block in site", site("app blog { wsgi b:a; }"), []string{f + `4:1: "app" does not take a { ... } block`}},
		{"app directive in app", app("wsgi b:a;\napp other;"), []string{f + `3:1: "app" is not allowed in app; allowed in: main, site, location`}},
		{"app directive in site", site("workers 4;"), []string{f + `4:1: "workers" is not allowed in site; allowed in: app`}},
		{"site directive in app", app("wsgi b:a;\nroot /www;"), []string{f + `3:1: "root" is not allowed in app; allowed in: site, location`}},
		{"unknown in app", app("wsgi b:a;\nworker 4;"), []string{f + `3:1: unknown directive "worker"; did you mean "workers"?`}},
		{"two entry points", app("wsgi b:a;\nwsgi c:d;"), []string{f + `3:1: "wsgi" is already set in this block at /t/main.conf:2:1`}},
		{"wsgi and asgi", app("wsgi b:a;\nasgi c:d;"), []string{f + `3:1: "asgi" conflicts with "wsgi" at /t/main.conf:2:1; an app has one of wsgi, asgi or command`}},
		{"wsgi and command", app("wsgi b:a;\ncommand ./server;"), []string{f + `3:1: "command" conflicts with "wsgi" at /t/main.conf:2:1; an app has one of wsgi, asgi or command`}},
		{"asgi not yet", app("asgi main:app;"), []string{f + `2:1: "asgi" is not supported yet; use wsgi`}},
		{"bad asgi", app("asgi main;"), []string{f + `2:6: asgi: expected MODULE:CALLABLE like blog.wsgi:application, got "main"`}},
		{"bad command is not also missing", app("command;"), []string{f + `2:1: "command" takes at least 1 argument, got 0`}},
		{"wsgi two args", app("wsgi a:b c:d;"), []string{f + `2:1: "wsgi" takes 1 argument, got 2`}},
		{"missing semicolon swallows the next directive", app("wsgi b:a\nworkers 4;"),
			[]string{f + `2:1: "wsgi" takes 1 argument, got 3; is a ";" missing at the end of line 2, before "workers"?`}},
		{"missing semicolon, comment between", app("wsgi b:a\n# the pool\n\nworkers 4;"),
			[]string{f + `2:1: "wsgi" takes 1 argument, got 3; is a ";" missing at the end of line 2, before "workers"?`}},
		{"no hint for a wrapped argument", app("wsgi b:a\nc:d;"), []string{f + `2:1: "wsgi" takes 1 argument, got 2`}},
		{"no hint for a quoted directive name", app("wsgi b:a\n\"workers\";"), []string{f + `2:1: "wsgi" takes 1 argument, got 2`}},
		{"missing semicolon before a block", site("index index.html\nlocation /x { root /y; }"),
			[]string{f + `4:1: "index" does not take a { ... } block; is a ";" missing at the end of line 4, before "location"?`}},
		{"empty python", app("wsgi b:a;\npython \"\";"), []string{f + `3:8: python: expected a program name or path, got ""`}},
		{"missing python", app("wsgi b:a;\npython /opt/venv/bin/python;"), []string{f + `3:8: python "/opt/venv/bin/python": file does not exist`}},
		{"missing relative python", app("wsgi b:a;\npython venv/bin/python;"), []string{f + `3:8: python "/t/venv/bin/python": file does not exist`}},
		{"missing command", app("command /opt/bin/server --port $PORT;"), []string{f + `2:9: command "/opt/bin/server": file does not exist`}},
		{"missing chdir", app("wsgi b:a;\nchdir /srv/nope;"), []string{f + `3:7: chdir "/srv/nope": directory does not exist`}},
		{"env bad key", app("wsgi b:a;\nenv 1X y;"), []string{f + `3:5: env: invalid variable name "1X": want letters, digits and "_", not starting with a digit`}},
		{"env key with =", app("wsgi b:a;\nenv A=B c;"), []string{f + `3:5: env: invalid variable name "A=B": want letters, digits and "_", not starting with a digit`}},
		{"env one arg", app("wsgi b:a;\nenv A;"), []string{f + `3:1: "env" takes 2 arguments, got 1`}},
		{"env dup", app("wsgi b:a;\nenv A 1;\nenv A 2;"), []string{f + `4:5: env A is already set in this app at /t/main.conf:3:5`}},
		{"workers zero", app("wsgi b:a;\nworkers 0;"), []string{f + `3:9: workers: must be at least 1`}},
		{"workers word", app("wsgi b:a;\nworkers many;"), []string{f + `3:9: workers: expected a whole number like 100, got "many"`}},
		{"min_workers zero", app("wsgi b:a;\nmin_workers 0;"), []string{f + `3:13: min_workers: must be at least 1`}},
		{"max_workers negative", app("wsgi b:a;\nmax_workers -2;"), []string{f + `3:13: max_workers: expected a whole number like 100, got "-2"`}},
		{"min above workers", app("wsgi b:a;\nworkers 4;\nmin_workers 5;"), []string{f + `4:13: min_workers 5 is more than workers 4 (at /t/main.conf:3:9)`}},
		{"max below workers", app("wsgi b:a;\nmax_workers 3;\nworkers 4;"), []string{f + `3:13: max_workers 3 is less than workers 4 (at /t/main.conf:4:9)`}},
		{"max below min", app("wsgi b:a;\nmin_workers 4;\nmax_workers 3;"), []string{f + `4:13: max_workers 3 is less than min_workers 4 (at /t/main.conf:3:13)`}},
		{"timeout zero", app("wsgi b:a;\ntimeout 0;"), []string{f + `3:9: timeout: must be greater than 0`}},
		{"timeout bad", app("wsgi b:a;\ntimeout 30S;"), []string{f + `3:9: timeout: expected a duration like 30s or 5m, got "30S"`}},
		{"graceful_timeout zero", app("wsgi b:a;\ngraceful_timeout 0s;"), []string{f + `3:18: graceful_timeout: must be greater than 0`}},
		{"max_requests bad", app("wsgi b:a;\nmax_requests lots;"), []string{f + `3:14: max_requests: expected a whole number like 100, got "lots"`}},
		{"max_requests two args", app("wsgi b:a;\nmax_requests 1000 100;"), []string{f + `3:19: max_requests: expected "jitter", got "100"`}},
		{"max_requests jitter no value", app("wsgi b:a;\nmax_requests 1000 jitter;"), []string{f + `3:19: max_requests: "jitter" needs a value after it`}},
		{"max_requests wrong keyword", app("wsgi b:a;\nmax_requests 1000 spread 100;"), []string{f + `3:19: max_requests: expected "jitter", got "spread"`}},
		{"max_requests bad jitter", app("wsgi b:a;\nmax_requests 1000 jitter 1%;"), []string{f + `3:26: max_requests: expected a whole number like 100, got "1%"`}},
		{"max_requests jitter with 0", app("wsgi b:a;\nmax_requests 0 jitter 10;"), []string{f + `3:23: max_requests: jitter makes no sense with 0 (never recycle)`}},
		{"max_requests four args", app("wsgi b:a;\nmax_requests 1 jitter 1 x;"), []string{f + `3:1: "max_requests" takes 1 to 3 arguments, got 4`}},
		{"max_lifetime bad", app("wsgi b:a;\nmax_lifetime forever;"), []string{f + `3:14: max_lifetime: expected a duration like 30s or 5m, got "forever"`}},
		{"max_lifetime bad jitter", app("wsgi b:a;\nmax_lifetime 1h jitter x;"), []string{f + `3:24: max_lifetime: expected a duration like 30s or 5m, got "x"`}},
		{"max_lifetime jitter with 0", app("wsgi b:a;\nmax_lifetime 0 jitter 1m;"), []string{f + `3:23: max_lifetime: jitter makes no sense with 0 (never recycle)`}},
		{"max_lifetime wrong keyword", app("wsgi b:a;\nmax_lifetime 1h timeout 1m;"), []string{f + `3:17: max_lifetime: expected "jitter", got "timeout"`}},
		{"max_memory bad", app("wsgi b:a;\nmax_memory 1t;"), []string{f + `3:12: max_memory: expected a size like 512k or 1m, got "1t"`}},
		{"preload bad", app("wsgi b:a;\npreload yes;"), []string{f + `3:9: preload: expected on or off, got "yes"`}},
		{"pipeline bad", app("wsgi b:a;\npipeline maybe;"), []string{f + `3:10: pipeline: expected on or off, got "maybe"`}},
		{"pipeline twice", app("wsgi b:a;\npipeline off;\npipeline on;"), []string{f + `4:1: "pipeline" is already set in this block at ` + f + `3:1`}},
		{"cpu_scheduling bad", app("wsgi b:a;\ncpu_scheduling idle;"), []string{f + `3:16: cpu_scheduling: expected batch or normal, got "idle"`}},
		{"cpu_scheduling twice", app("wsgi b:a;\ncpu_scheduling batch;\ncpu_scheduling normal;"), []string{f + `4:1: "cpu_scheduling" is already set in this block at ` + f + `3:1`}},
		{"queue zero", app("wsgi b:a;\nqueue 0;"), []string{f + `3:7: queue: must be at least 1`}},
		{"queue bad timeout", app("wsgi b:a;\nqueue 10 timeout soon;"), []string{f + `3:18: queue: expected a duration like 30s or 5m, got "soon"`}},
		{"queue zero timeout", app("wsgi b:a;\nqueue 10 timeout 0;"), []string{f + `3:18: queue: must be greater than 0`}},
		{"queue no timeout value", app("wsgi b:a;\nqueue 10 timeout;"), []string{f + `3:10: queue: "timeout" needs a value after it`}},
		{"queue wrong keyword", app("wsgi b:a;\nqueue 10 5s;"), []string{f + `3:10: queue: expected "timeout", got "5s"`}},
		{"bad user", app("wsgi b:a;\nuser \"www data\";"), []string{f + `3:6: user: invalid user name "www data"`}},
		{"bad group", app("wsgi b:a;\ngroup -g;"), []string{f + `3:7: group: invalid group name "-g"`}},
		{"repeated in app", app("wsgi b:a;\nworkers 2;\nworkers 3;"), []string{f + `4:1: "workers" is already set in this block at /t/main.conf:3:1`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want...) })
	}
}

// TestAppReferences pins `app NAME;` in sites and locations and the checks
// that tie it to the app blocks.
func TestAppReferences(t *testing.T) {
	const f = "/t/main.conf:"
	blog := "app blog { wsgi blog.wsgi:application; }\n" // line 1; site() starts on line 2
	cases := []struct {
		name, src string
		want      []string
	}{
		{"location uses app", blog + site("location @app { app blog; }\ntry_files $uri @app;"), nil},
		{"site uses app", blog + "site a { listen 80; app blog; }", nil},
		{"app used before it is defined", "site a { listen 80; app blog; }\n" + blog, nil},
		{"no such app, suggestion", blog + site("location / { app blgo; }"),
			[]string{f + `5:18: no app named "blgo"; did you mean "blog"?`}},
		{"no such app", blog + site("location / { app shop; }"),
			[]string{f + `5:18: no app named "shop"; define it at top level with app shop { ... }`}},
		{"no apps at all", "site a { listen 80; app blog; }",
			[]string{f + `1:25: no app named "blog"; define it at top level with app blog { ... }`}},
		{"duplicate app", blog + "app blog { wsgi other:app; }",
			[]string{f + `2:5: app "blog" is already defined at /t/main.conf:1:5`}},
		{"app and return", blog + site("location / { app blog; return 404; }"),
			[]string{f + `5:24: "return" conflicts with "app" at /t/main.conf:5:14; a block has one handler`}},
		{"return and app", blog + site("location / { return 404; app blog; }"),
			[]string{f + `5:26: "app" conflicts with "return" at /t/main.conf:5:14; a block has one handler`}},
		{"app and try_files", blog + site("location / { try_files $uri @x; app blog; }\nlocation @x { }"),
			[]string{f + `5:33: "app" conflicts with "try_files" at /t/main.conf:5:14; a block has one handler`}},
		{"app and static", blog + site("static;\napp blog;"),
			[]string{f + `6:1: "app" conflicts with "static" at /t/main.conf:5:1; a block has one handler`}},
		{"app twice", blog + site("app blog;\napp blog;"),
			[]string{f + `6:1: "app" is already set in this block at /t/main.conf:5:1`}},
		{"app takes a name", blog + site("app;"),
			[]string{f + `5:1: "app" takes 1 argument, got 0`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want...) })
	}
}

// TestAppInheritance: app is a handler, inherited like the others.
func TestAppInheritance(t *testing.T) {
	cfg := mustParse(t, `
app blog { wsgi blog.wsgi:application; }
app shop { wsgi shop:app; }
site a {
    listen 80;
    app blog;
    location /plain/ { }
    location /files/ { root /www; }
    location /shop/ { app shop; }
    location @named { }
}
site b {
    listen 81;
    root /www;
    location / { try_files $uri @app; }
    location @app { app blog; }
}`)
	a := cfg.Sites[0]
	if r := a.Route; r.App != "blog" || r.Static {
		t.Errorf("site route %+v: app, not static", r)
	}
	if r := a.Locations[0].Route; r.App != "blog" || r.Static {
		t.Errorf("a location without a handler or directory inherits the site's app: %+v", r)
	}
	if r := a.Locations[1].Route; r.App != "" || !r.Static {
		t.Errorf("a location with its own root serves files: %+v", r)
	}
	if r := a.Locations[2].Route; r.App != "shop" {
		t.Errorf("own app wins: %+v", r)
	}
	if r := a.Locations[3].Route; r.App != "" || r.Static {
		t.Errorf("a named location never inherits a handler: %+v", r)
	}
	b := cfg.Sites[1]
	if r := b.Locations[0].Route; r.App != "" || len(r.TryFiles) != 2 {
		t.Errorf("try_files location: %+v", r)
	}
	if r := b.Locations[1].Route; r.App != "blog" || r.Static || r.Root != "/www" {
		t.Errorf("named app location keeps the root but answers from the app: %+v", r)
	}
}

// TestCheckPrivileges: user and group need root, checked when running.
func TestCheckPrivileges(t *testing.T) {
	cfg := mustParse(t, "app a { wsgi a:b; user www-data; group www-data; }\napp b { wsgi a:b; }\napp c { wsgi a:b; group staff; }")
	if err := cfg.CheckPrivileges(0); err != nil {
		t.Errorf("as root: %v", err)
	}
	err := cfg.CheckPrivileges(1000)
	want := strings.Join([]string{
		`/t/main.conf:1:19: "user" needs tandem to run as root`,
		`/t/main.conf:1:34: "group" needs tandem to run as root`,
		`/t/main.conf:3:19: "group" needs tandem to run as root`,
	}, "\n")
	if _, ok := err.(Errors); !ok || err.Error() != want {
		t.Errorf("as non-root: %v\nwant:\n%s", err, want)
	}
	if err := mustParse(t, "app b { wsgi a:b; }").CheckPrivileges(1000); err != nil {
		t.Errorf("no user or group: %v", err)
	}
}
