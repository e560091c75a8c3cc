package conf

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tandem-server/tandem/conf/htpasswd"
)

// builder maps the generic tree into the typed model, recording every
// problem and carrying on, so one run reports all of them.
type builder struct {
	errs *errList
	cfg  *Config
}

// scope is the block being built: main, a site, a location, an app or an
// upstream.
type scope struct {
	kind  blockKind
	site  *Site     // nil in main
	loc   *Location // nil outside a location
	route *Route    // the site's or location's route
	app   *App      // nil outside an app block
	up    *Upstream // nil outside an upstream block
	// seen records where each non-repeatable directive first appeared.
	seen map[string]Pos
	// written records every directive that appeared in the block, valid or
	// not, so validation does not report a bad root as a missing one too.
	written map[string]bool
	// handler is the first handler directive in this block, so a second,
	// conflicting one can point back at it.
	handler    string
	handlerPos Pos
}

func newScope(kind blockKind) *scope {
	return &scope{kind: kind, seen: map[string]Pos{}, written: map[string]bool{}}
}

// buildMain builds the top level.
func (b *builder) buildMain(nodes []*node) {
	b.cfg.Limits.MaxBodyBytes = -1 // unset until defaults; 0 means unlimited
	b.buildBlock(newScope(inMain), nodes)
}

// buildBlock dispatches each directive through the table after the checks
// every directive shares: known name, allowed here, shape, repetition.
func (b *builder) buildBlock(sc *scope, nodes []*node) {
	for _, n := range nodes {
		d, ok := directives[n.Name]
		if !ok {
			b.unknown(n)
			continue
		}
		d, all := d.forContext(sc.kind, n.HasBlock)
		if d.in&sc.kind == 0 {
			msg := fmt.Sprintf("%q is not allowed in %s; allowed in: %s", n.Name, sc.kind, all)
			if d.hint != "" {
				msg += " (" + d.hint + ")"
			}
			b.errs.add(n.Pos, "%s", msg)
			continue
		}
		sc.written[n.Name] = true
		if !checkShape(b.errs, n, d) {
			continue
		}
		if !d.repeat {
			if first, dup := sc.seen[n.Name]; dup {
				b.errs.add(n.Pos, "%q is already set in this block at %s", n.Name, first)
				continue
			}
			sc.seen[n.Name] = n.Pos
		}
		if d.build != nil {
			d.build(b, sc, n)
		}
	}
}

// argErr records a bad argument value at the argument's position.
func (b *builder) argErr(n *node, a arg, err error) {
	b.errs.wrap(a.Pos, n.Name, err)
}

// path resolves a path argument against the directory of the file it was
// written in, so a snippet means the same wherever it is included from.
func (n *node) path(a arg) string {
	if filepath.IsAbs(a.Value) {
		return filepath.Clean(a.Value)
	}
	return filepath.Join(n.dir, a.Value)
}

func buildPIDFile(b *builder, _ *scope, n *node) {
	b.cfg.PIDFile = n.path(n.Args[0])
}

var logLevels = []string{"debug", "info", "warn", "error"}

func buildErrorLog(b *builder, _ *scope, n *node) {
	t := LogTarget{Pos: n.Pos, Path: n.Args[0].Value, Level: "info"}
	if t.Path != "stderr" {
		t.Path = n.path(n.Args[0])
	}
	if len(n.Args) == 2 {
		lv := n.Args[1]
		if !slices.Contains(logLevels, lv.Value) {
			b.argErr(n, lv, fmt.Errorf("expected a level (debug, info, warn or error), got %q", lv.Value))
			return
		}
		t.Level = lv.Value
	}
	b.cfg.ErrorLog = t
}

func buildAccessLog(b *builder, sc *scope, n *node) {
	if sc.loc != nil {
		// A location only turns its requests' lines off: the file and
		// format are the site's, so one site keeps one log.
		if n.Args[0].Value != "off" || len(n.Args) != 1 {
			b.errs.add(n.Pos, "in a location, access_log takes only off (the file and format are set for the site)")
			return
		}
		sc.loc.NoAccessLog = true
		return
	}
	l := AccessLog{Pos: n.Pos, Set: true, Path: n.Args[0].Value, Format: "combined"}
	switch l.Path {
	case "off":
		l.Off, l.Path, l.Format = true, "", ""
		if len(n.Args) == 2 {
			b.argErr(n, n.Args[1], fmt.Errorf("a format makes no sense with off"))
			return
		}
	case "stderr":
	default:
		l.Path = n.path(n.Args[0])
	}
	if len(n.Args) == 2 {
		f := n.Args[1]
		if f.Value != "combined" && f.Value != "json" {
			b.argErr(n, f, fmt.Errorf("expected a format (combined or json), got %q", f.Value))
			return
		}
		l.Format = f.Value
	}
	if sc.site != nil {
		sc.site.AccessLog = l
	} else {
		b.cfg.AccessLog = l
	}
}

// positiveDuration parses a timeout that must not be zero: in Limits zero
// means "use the default", so accepting "0" would silently mean 10s or 60s.
func positiveDuration(b *builder, n *node) (time.Duration, bool) {
	d, err := parseDuration(n.Args[0].Value)
	if err == nil && d == 0 {
		err = fmt.Errorf("must be greater than 0")
	}
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return 0, false
	}
	return d, true
}

func buildShutdownTimeout(b *builder, _ *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		b.cfg.ShutdownTimeout = d
	}
}

func buildHeaderTimeout(b *builder, _ *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		b.cfg.Limits.HeaderTimeout = d
	}
}

func buildBodyTimeout(b *builder, _ *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		b.cfg.Limits.BodyTimeout = d
	}
}

func buildIdleTimeout(b *builder, _ *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		b.cfg.Limits.IdleTimeout = d
	}
}

// buildWriteTimeout accepts 0: off is write_timeout's default anyway.
func buildWriteTimeout(b *builder, _ *scope, n *node) {
	d, err := parseDuration(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	b.cfg.Limits.WriteTimeout = d
}

func buildMaxHeaderSize(b *builder, _ *scope, n *node) {
	sz, err := parseSize(n.Args[0].Value)
	if err == nil && sz == 0 {
		err = fmt.Errorf("must be greater than 0")
	}
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	b.cfg.Limits.MaxHeaderBytes = sz
}

func buildMaxConnections(b *builder, _ *scope, n *node) {
	c, err := parseCount(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	b.cfg.Limits.MaxConnections = c
}

// buildMaxBodySize sets client_max_body_size on whichever block it is in;
// an explicit 0 means unlimited.
func buildMaxBodySize(b *builder, sc *scope, n *node) {
	sz, err := parseSize(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	switch {
	case sc.loc != nil:
		sc.loc.MaxBodyBytes = sz
	case sc.site != nil:
		sc.site.MaxBodyBytes = sz
	default:
		b.cfg.Limits.MaxBodyBytes = sz
	}
}

func buildSite(b *builder, _ *scope, n *node) {
	s := &Site{Pos: n.Pos, MaxBodyBytes: -1}
	for _, a := range n.Args {
		if err := checkSiteName(a.Value); err != nil {
			b.errs.add(a.Pos, "%v", err)
			continue
		}
		s.Names = append(s.Names, strings.ToLower(a.Value))
		s.namePos = append(s.namePos, a.Pos)
	}
	sc := newScope(inSite)
	sc.site, sc.route = s, &s.Route
	b.buildBlock(sc, n.Block)
	finishInlineTimeouts(b, &s.Route)
	s.listenWritten = sc.written["listen"]
	finishSiteTLS(b, s, sc)
	finishSiteHTTP3(b, s) // after TLS: it reads which addresses serve TLS
	s.Route.pos.dirWritten = sc.written["root"]
	b.cfg.Sites = append(b.cfg.Sites, s)
}

// buildListen reads `listen ADDR... [default|default_server] [http] [h2c];`;
// the flags, in any order, apply to every address of the line.
func buildListen(b *builder, sc *scope, n *node) {
	args, f := splitListenFlags(n.Args)
	if len(args) == 0 {
		b.errs.add(n.Pos, "%q needs an address before %q", n.Name, n.Args[0].Value)
		return
	}
	for _, a := range args {
		if hint, ok := nginxListenFlags[a.Value]; ok {
			b.errs.add(a.Pos, "listen flag %q is nginx's: %s", a.Value, hint)
			continue
		}
		addr, err := normalizeListen(a.Value)
		if err != nil {
			b.errs.add(a.Pos, "%v", err)
			continue
		}
		sc.site.Listen = append(sc.site.Listen, Listen{
			Pos: a.Pos, Addr: addr, Default: f.def, HTTP: f.plain, H2C: f.h2c, h2cPos: f.h2cPos,
		})
	}
}

// listenFlags are the trailing flags of a listen line.
type listenFlags struct {
	def, plain, h2c bool
	h2cPos          Pos
}

// splitListenFlags takes the trailing flags off a listen line.
func splitListenFlags(args []arg) (addrs []arg, f listenFlags) {
	for len(args) > 0 {
		switch last := args[len(args)-1]; {
		case (last.Value == "default" || last.Value == "default_server") && !f.def:
			f.def = true
		case last.Value == "http" && !f.plain:
			f.plain = true
		case last.Value == "h2c" && !f.h2c:
			f.h2c, f.h2cPos = true, last.Pos
		default:
			return args, f
		}
		args = args[:len(args)-1]
	}
	return args, f
}

// buildLocation reads `location [=|^~] PATH { }`, `location ~|~* RE { }`
// and `location @NAME { }`.
func buildLocation(b *builder, sc *scope, n *node) {
	loc := &Location{Pos: n.Pos, MaxBodyBytes: -1}
	p := n.Args[len(n.Args)-1]
	switch {
	case len(n.Args) == 2:
		switch n.Args[0].Value {
		case "=":
			loc.Kind = Exact
		case "^~":
			loc.Kind = PrefixNoRegex
		case "~", "~*":
			loc.Kind, loc.IgnoreCase = Regex, n.Args[0].Value == "~*"
		default:
			b.errs.add(n.Args[0].Pos, "location modifier %q is not supported; use \"=\", \"^~\", \"~\" or \"~*\"", n.Args[0].Value)
			return
		}
	case strings.HasPrefix(p.Value, "@"):
		loc.Kind = Named
	}
	switch {
	case loc.Kind == Named && len(p.Value) < 2:
		b.errs.add(p.Pos, "named location needs a name after \"@\"")
		return
	case loc.Kind == Regex:
		re, err := compileLocationRegex(p.Value, loc.IgnoreCase)
		if err != nil {
			b.errs.add(p.Pos, "%v", err)
			return
		}
		loc.Regexp = re
	case loc.Kind != Named && !strings.HasPrefix(p.Value, "/"):
		b.errs.add(p.Pos, "location path %q must start with \"/\" (or \"@\" for a named location, \"~\" for a regular expression)", p.Value)
		return
	}
	loc.Path = p.Value
	lsc := newScope(inLocation)
	lsc.site, lsc.loc, lsc.route = sc.site, loc, &loc.Route
	b.buildBlock(lsc, n.Block)
	finishInlineTimeouts(b, &loc.Route)
	loc.Route.pos.dirWritten = lsc.written["root"] || lsc.written["alias"]
	sc.site.Locations = append(sc.site.Locations, loc)
}

// compileLocationRegex compiles the RE of `location ~ RE`. Go's RE2
// syntax is nginx's PCRE without lookaround, backreferences and
// possessive quantifiers; the error says so, since those are what a
// pattern copied from an nginx config would trip over.
func compileLocationRegex(expr string, ignoreCase bool) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, fmt.Errorf("location ~ needs a regular expression")
	}
	src := expr
	if ignoreCase {
		src = "(?i)" + expr
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %v (RE2 syntax: no lookaround or backreferences)", expr, unwrapRegexpErr(err))
	}
	return re, nil
}

// unwrapRegexpErr drops regexp's "error parsing regexp: " prefix.
func unwrapRegexpErr(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// headersNotAdded are response headers add_header must not touch: they
// frame the response, and a second value would corrupt it.
var headersNotAdded = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Upgrade": true, "Trailer": true,
}

// buildAddHeader reads `add_header NAME VALUE [always];`.
func buildAddHeader(b *builder, sc *scope, n *node) {
	name, val := n.Args[0], n.Args[1]
	if !isToken(name.Value) {
		b.argErr(n, name, fmt.Errorf("invalid header name %q: use letters, digits and !#$%%&'*+-.^_`|~", name.Value))
		return
	}
	canon := http.CanonicalHeaderKey(name.Value)
	if headersNotAdded[canon] {
		b.argErr(n, name, fmt.Errorf("%s is set by tandem itself and cannot be added", canon))
		return
	}
	if strings.ContainsAny(val.Value, "\r\n\x00") {
		b.argErr(n, val, fmt.Errorf("header values must not contain line breaks or NUL"))
		return
	}
	if strings.Contains(val.Value, "$") {
		b.argErr(n, val, fmt.Errorf("add_header values are literal: $variables are not expanded (write the value out, or set the header in the app)"))
		return
	}
	h := AddHeader{Name: canon, Value: val.Value}
	if len(n.Args) == 3 {
		if n.Args[2].Value != "always" {
			b.argErr(n, n.Args[2], fmt.Errorf("expected \"always\" or nothing after the value, got %q", n.Args[2].Value))
			return
		}
		h.Always = true
	}
	if sc.route.AddHeaders == nil {
		sc.route.AddHeaders = []AddHeader{}
	}
	sc.route.AddHeaders = append(sc.route.AddHeaders, h)
}

// buildAccess reads `allow ADDR;` and `deny ADDR;`, keeping their order.
func buildAccess(b *builder, sc *scope, n *node) {
	a := n.Args[0]
	rule := AccessRule{Allow: n.Name == "allow"}
	switch a.Value {
	case "all":
	case "private":
		rule.Prefixes = slices.Clone(privateRanges)
	default:
		p, err := parseTrustedPrefix(a.Value)
		if err != nil {
			b.argErr(n, a, fmt.Errorf("expected an IP address, a CIDR like 10.0.0.0/8, private or all, got %q", a.Value))
			return
		}
		rule.Prefixes = []netip.Prefix{p}
	}
	if sc.route.Access == nil {
		sc.route.Access = []AccessRule{}
	}
	sc.route.Access = append(sc.route.Access, rule)
}

// buildAuthBasic reads `auth_basic REALM|off;`.
func buildAuthBasic(b *builder, sc *scope, n *node) {
	realm := n.Args[0].Value
	if realm == "off" {
		realm = ""
	} else if strings.ContainsAny(realm, "\"\\\r\n") {
		b.argErr(n, n.Args[0], fmt.Errorf("the realm may not contain quotes, backslashes or line breaks"))
		return
	}
	sc.route.AuthRealm = &realm
	sc.route.pos.authRealm = n.Pos
}

// buildAuthBasicUserFile reads `auth_basic_user_file FILE;` and parses
// the file now, so a bad line is reported with the config's errors.
func buildAuthBasicUserFile(b *builder, sc *scope, n *node) {
	a := n.Args[0]
	sc.route.pos.authUsersWritten = true
	path := n.path(a)
	f, err := os.Open(path)
	if err != nil {
		b.argErr(n, a, fmt.Errorf("cannot read user file: %w", err))
		return
	}
	defer f.Close()
	users, errs := htpasswd.Parse(f)
	for _, e := range errs {
		b.argErr(n, a, fmt.Errorf("%s: %w", path, e))
	}
	if len(errs) > 0 {
		return
	}
	sc.route.AuthUsers = &AuthUsers{Path: path, Users: users}
}
