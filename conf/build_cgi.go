package conf

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// cgiOpts holds a block's own cgi_timeout and cgi_env while loading. Like
// proxyOpts they are kept apart from Route.CGI because they may appear
// without `cgi` (at site level, as defaults for the locations' scripts)
// and before it; once inheritance is done they are copied into Route.CGI.
type cgiOpts struct {
	// timeout is 0 when the block does not set cgi_timeout.
	timeout    time.Duration
	timeoutPos Pos
	// env is nil when the block sets no cgi_env; envPos maps each KEY to
	// where it was written, firstEnv is the first cgi_env line.
	env      []EnvVar
	envPos   map[string]Pos
	firstEnv Pos
}

// set reports whether the block wrote cgi_timeout or cgi_env.
func (o *cgiOpts) set() bool { return o.timeout != 0 || o.env != nil }

// buildCGI reads `cgi;`, a handler like app or proxy.
func buildCGI(b *builder, sc *scope, n *node) {
	if b.claimHandler(sc, n) {
		sc.route.CGI = &CGI{Pos: n.Pos}
	}
}

func buildCGITimeout(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		sc.route.cgiOpts.timeout, sc.route.cgiOpts.timeoutPos = d, n.Pos
	}
}

// buildCGIEnv reads `cgi_env KEY VALUE;`; each KEY once per block. A NUL
// in the value could never reach the script (execve would refuse the
// whole environment), so it is refused here.
func buildCGIEnv(b *builder, sc *scope, n *node) {
	key, val := n.Args[0], n.Args[1]
	if !envKey.MatchString(key.Value) {
		b.argErr(n, key, fmt.Errorf("invalid variable name %q: want letters, digits and \"_\", not starting with a digit", key.Value))
		return
	}
	if strings.ContainsRune(val.Value, 0) {
		b.argErr(n, val, fmt.Errorf("values must not contain NUL"))
		return
	}
	o := &sc.route.cgiOpts
	if first, dup := o.envPos[key.Value]; dup {
		b.errs.add(key.Pos, "cgi_env %s is already set in this block at %s", key.Value, first)
		return
	}
	if o.envPos == nil {
		o.envPos, o.firstEnv = map[string]Pos{}, n.Pos
	}
	o.envPos[key.Value] = key.Pos
	o.env = append(o.env, EnvVar{Key: key.Value, Value: val.Value})
}

// cgiInEffect reports whether location l will run CGI scripts once
// inheritance is done: its own `cgi;`, or its site's when l takes the
// site's handler (see applyLocationDefaults). It runs in validate, before
// inheritance.
func cgiInEffect(l *Location, s *Site) bool {
	r := &l.Route
	if r.CGI != nil {
		return true
	}
	inherits := !hasHandler(r) && r.Root == "" && r.Alias == "" && l.Kind != Named
	return inherits && s.Route.CGI != nil
}

// validateCGIOpts reports cgi_timeout and cgi_env lines that cannot
// apply to any script: in a location without cgi in effect, or in a site
// where neither the site nor any of its locations has cgi.
func validateCGIOpts(s *Site, errs *errList) {
	used := s.Route.CGI != nil || slices.ContainsFunc(s.Locations, func(l *Location) bool { return cgiInEffect(l, s) })
	reportUnusedCGIOpts(&s.Route.cgiOpts, used, "in this site or any of its locations", errs)
	for _, l := range s.Locations {
		reportUnusedCGIOpts(&l.Route.cgiOpts, cgiInEffect(l, s), "in this location or inherited from its site", errs)
	}
}

func reportUnusedCGIOpts(o *cgiOpts, used bool, where string, errs *errList) {
	if used || !o.set() {
		return
	}
	if o.timeout != 0 {
		errs.add(o.timeoutPos, "\"cgi_timeout\" has no effect without \"cgi\" %s", where)
	}
	if o.env != nil {
		errs.add(o.firstEnv, "\"cgi_env\" has no effect without \"cgi\" %s", where)
	}
}

// inheritCGIOpts fills a location's unset cgi_timeout and cgi_env from its
// site: a location's own cgi_env lines replace the site's whole set, as
// proxy_set_header does.
func inheritCGIOpts(o, site *cgiOpts) {
	if o.timeout == 0 {
		o.timeout = site.timeout
	}
	if o.env == nil {
		o.env = slices.Clone(site.env)
	}
}

// finishCGI completes a route's cgi once its block is defaulted: the
// block's effective cgi_timeout (default 60s) and cgi_env.
func finishCGI(r *Route) {
	c := r.CGI
	if c == nil {
		return
	}
	c.Timeout = r.cgiOpts.timeout
	if c.Timeout == 0 {
		c.Timeout = defaultCGITimeout
	}
	c.Env = slices.Clone(r.cgiOpts.env)
}
