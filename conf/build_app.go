package conf

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// pyDotted is a dotted Python name: "blog.wsgi", "application".
const pyDotted = `[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*`

var (
	// pyTarget is MODULE:CALLABLE as gunicorn takes it; a trailing "()"
	// calls a factory ("app:create_app()").
	pyTarget = regexp.MustCompile(`^` + pyDotted + `:` + pyDotted + `(?:\(\))?$`)
	// appName keeps app names usable in logs, metrics and file names.
	appName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	// envKey is a portable environment variable name.
	envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// sysName is a POSIX portable user or group name, or a numeric id.
	sysName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$`)
)

// buildApp reads `app NAME { ... }` at top level. The app is recorded even
// when its name is invalid, so `app NAME;` uses do not add a second error.
func buildApp(b *builder, _ *scope, n *node) {
	name := n.Args[0]
	if !appName.MatchString(name.Value) {
		b.errs.add(name.Pos, "invalid app name %q: use letters, digits, \"_\", \"-\" and \".\"", name.Value)
	}
	a := &App{Pos: n.Pos, Name: name.Value, dir: n.dir}
	a.pos.name = name.Pos
	sc := newScope(inApp)
	sc.app = a
	b.buildBlock(sc, n.Block)
	if !sc.written["wsgi"] && !sc.written["asgi"] && !sc.written["command"] {
		b.errs.add(n.Pos, "app %q needs one of wsgi, asgi or command", a.Name)
	}
	b.cfg.Apps = append(b.cfg.Apps, a)
}

// buildAppRef reads `app NAME;` in a site or location, a handler; NAME is
// checked against the app blocks in validate.
func buildAppRef(b *builder, sc *scope, n *node) {
	if b.claimHandler(sc, n) {
		sc.route.App = n.Args[0].Value
		sc.route.pos.app = n.Args[0].Pos
	}
}

// claimEntry enforces one entry point per app: wsgi, asgi or command.
func (b *builder) claimEntry(sc *scope, n *node) bool {
	if sc.handler != "" {
		b.errs.add(n.Pos, "%q conflicts with %q at %s; an app has one of wsgi, asgi or command", n.Name, sc.handler, sc.handlerPos)
		return false
	}
	sc.handler, sc.handlerPos = n.Name, n.Pos
	return true
}

// pyTargetArg checks a MODULE:CALLABLE argument.
func pyTargetArg(b *builder, n *node) (string, bool) {
	a := n.Args[0]
	if !pyTarget.MatchString(a.Value) {
		b.argErr(n, a, fmt.Errorf("expected MODULE:CALLABLE like blog.wsgi:application, got %q", a.Value))
		return "", false
	}
	return a.Value, true
}

func buildWSGI(b *builder, sc *scope, n *node) {
	if t, ok := pyTargetArg(b, n); ok && b.claimEntry(sc, n) {
		sc.app.WSGI = t
	}
}

// buildASGI accepts the directive into the model but rejects it until the
// ASGI worker exists, so a config using it fails loudly rather than late.
func buildASGI(b *builder, sc *scope, n *node) {
	if t, ok := pyTargetArg(b, n); ok && b.claimEntry(sc, n) {
		sc.app.ASGI = t
		b.errs.add(n.Pos, "%q is not supported yet; use wsgi", n.Name)
	}
}

// buildCommand reads `command ARG...;`. Arguments stay literal:
// $TANDEM_SOCKET and $PORT are expanded by the app server per worker.
func buildCommand(b *builder, sc *scope, n *node) {
	if b.claimEntry(sc, n) {
		sc.app.Command = argValues(n.Args)
		sc.app.pos.command = n.Args[0].Pos
	}
}

// buildPython reads `python PATH;`. A name without "/" is looked up in
// PATH when workers start; a path resolves against the config file's
// directory and must exist (checked in validate).
func buildPython(b *builder, sc *scope, n *node) {
	a := n.Args[0]
	switch {
	case a.Value == "":
		b.argErr(n, a, fmt.Errorf("expected a program name or path, got \"\""))
	case strings.Contains(a.Value, "/"):
		sc.app.Python = n.path(a)
	default:
		sc.app.Python = a.Value
	}
	sc.app.pos.python = a.Pos
}

func buildChdir(b *builder, sc *scope, n *node) {
	sc.app.Chdir = n.path(n.Args[0])
	sc.app.pos.chdir = n.Args[0].Pos
}

// buildEnv reads `env KEY VALUE;`; each KEY once per app.
func buildEnv(b *builder, sc *scope, n *node) {
	key, val := n.Args[0], n.Args[1]
	if !envKey.MatchString(key.Value) {
		b.argErr(n, key, fmt.Errorf("invalid variable name %q: want letters, digits and \"_\", not starting with a digit", key.Value))
		return
	}
	a := sc.app
	if first, dup := a.pos.env[key.Value]; dup {
		b.errs.add(key.Pos, "env %s is already set in this app at %s", key.Value, first)
		return
	}
	if a.pos.env == nil {
		a.pos.env = map[string]Pos{}
	}
	a.pos.env[key.Value] = key.Pos
	a.Env = append(a.Env, EnvVar{Key: key.Value, Value: val.Value})
}

// atLeastOne parses a count that must be 1 or more: 0 would mean "unset"
// in the model and silently become the default.
func atLeastOne(b *builder, n *node, a arg) (int, bool) {
	c, err := parseCount(a.Value)
	if err == nil && c == 0 {
		err = fmt.Errorf("must be at least 1")
	}
	if err != nil {
		b.argErr(n, a, err)
		return 0, false
	}
	return c, true
}

func buildWorkers(b *builder, sc *scope, n *node) {
	if c, ok := atLeastOne(b, n, n.Args[0]); ok {
		sc.app.Workers, sc.app.pos.workers = c, n.Args[0].Pos
	}
}

func buildMinWorkers(b *builder, sc *scope, n *node) {
	if c, ok := atLeastOne(b, n, n.Args[0]); ok {
		sc.app.MinWorkers, sc.app.pos.minWorkers = c, n.Args[0].Pos
	}
}

func buildMaxWorkers(b *builder, sc *scope, n *node) {
	if c, ok := atLeastOne(b, n, n.Args[0]); ok {
		sc.app.MaxWorkers, sc.app.pos.maxWorkers = c, n.Args[0].Pos
	}
}

func buildAppTimeout(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		sc.app.Timeout = d
	}
}

func buildGracefulTimeout(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		sc.app.GracefulTimeout = d
	}
}

// option reads the optional `KEYWORD VALUE` pair after a directive's first
// argument, as in `max_requests 1000 jitter 100;`. It returns nil when the
// pair is absent, and ok=false after reporting a malformed one.
func option(b *builder, n *node, keyword string) (val *arg, ok bool) {
	if len(n.Args) == 1 {
		return nil, true
	}
	kw := n.Args[1]
	if kw.Value != keyword {
		b.argErr(n, kw, fmt.Errorf("expected %q, got %q", keyword, kw.Value))
		return nil, false
	}
	if len(n.Args) == 2 {
		b.argErr(n, kw, fmt.Errorf("%q needs a value after it", keyword))
		return nil, false
	}
	return &n.Args[2], true
}

// buildMaxRequests reads `max_requests N [jitter N];` 0 = never recycle.
func buildMaxRequests(b *builder, sc *scope, n *node) {
	if limit, jitter, ok := limitWithJitter(b, n, parseCount); ok {
		sc.app.MaxRequests, sc.app.MaxRequestsJitter = limit, jitter
	}
}

// buildMaxLifetime reads `max_lifetime DURATION [jitter DURATION];` 0 = never.
func buildMaxLifetime(b *builder, sc *scope, n *node) {
	if life, jitter, ok := limitWithJitter(b, n, parseDuration); ok {
		sc.app.MaxLifetime, sc.app.MaxLifetimeJitter = life, jitter
	}
}

// limitWithJitter reads `LIMIT [jitter J]` where both parse with parse;
// a jitter on a zero (never) limit is an error.
func limitWithJitter[T int | time.Duration](b *builder, n *node, parse func(string) (T, error)) (limit, jitter T, ok bool) {
	limit, err := parse(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return 0, 0, false
	}
	j, ok := option(b, n, "jitter")
	if !ok || j == nil {
		return limit, 0, ok
	}
	if jitter, err = parse(j.Value); err != nil {
		b.argErr(n, *j, err)
		return 0, 0, false
	}
	if limit == 0 && jitter > 0 {
		b.argErr(n, *j, fmt.Errorf("jitter makes no sense with 0 (never recycle)"))
		return 0, 0, false
	}
	return limit, jitter, true
}

func buildMaxMemory(b *builder, sc *scope, n *node) {
	sz, err := parseSize(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	sc.app.MaxMemory = sz
}

func buildPreload(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		sc.app.Preload, sc.app.preloadSet = *v, true
	}
}

func buildPipeline(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		sc.app.NoPipeline = !*v
	}
}

// buildCPUScheduling reads `cpu_scheduling batch|normal;`.
func buildCPUScheduling(b *builder, sc *scope, n *node) {
	switch v := n.Args[0].Value; v {
	case "batch":
		sc.app.NormalScheduling = false
	case "normal":
		sc.app.NormalScheduling = true
	default:
		b.argErr(n, n.Args[0], fmt.Errorf("expected batch or normal, got %q", v))
	}
}

// buildQueue reads `queue N [timeout DURATION];`.
func buildQueue(b *builder, sc *scope, n *node) {
	size, ok := atLeastOne(b, n, n.Args[0])
	if !ok {
		return
	}
	t, ok := option(b, n, "timeout")
	if !ok {
		return
	}
	var timeout time.Duration
	if t != nil {
		var err error
		timeout, err = parseDuration(t.Value)
		if err == nil && timeout == 0 {
			err = fmt.Errorf("must be greater than 0")
		}
		if err != nil {
			b.argErr(n, *t, err)
			return
		}
	}
	sc.app.Queue, sc.app.QueueTimeout = size, timeout
}

func buildUser(b *builder, sc *scope, n *node) {
	if v, ok := sysNameArg(b, n, "user"); ok {
		sc.app.User, sc.app.pos.user = v, n.Pos
	}
}

func buildGroup(b *builder, sc *scope, n *node) {
	if v, ok := sysNameArg(b, n, "group"); ok {
		sc.app.Group, sc.app.pos.group = v, n.Pos
	}
}

func sysNameArg(b *builder, n *node, what string) (string, bool) {
	a := n.Args[0]
	if !sysName.MatchString(a.Value) {
		b.argErr(n, a, fmt.Errorf("invalid %s name %q", what, a.Value))
		return "", false
	}
	return a.Value, true
}

// CheckPrivileges reports every user and group directive when euid is not
// root's: dropping privileges needs them. Load does not run this check,
// because `tandem check` is often run as another user than the server;
// `tandem run` calls it with os.Geteuid() before starting workers. The
// result is nil or an Errors, like Load's.
func (c *Config) CheckPrivileges(euid int) error {
	if euid == 0 {
		return nil
	}
	var errs Errors
	for _, a := range c.Apps {
		if a.User != "" {
			errs = append(errs, &Error{Pos: a.pos.user, Msg: `"user" needs tandem to run as root`})
		}
		if a.Group != "" {
			errs = append(errs, &Error{Pos: a.pos.group, Msg: `"group" needs tandem to run as root`})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}
