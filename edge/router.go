package edge

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge/cache"
	"github.com/tandem-server/tandem/edge/compress"
	"github.com/tandem-server/tandem/static"
)

// router is an immutable snapshot of every site, built once per config
// load. A reload builds a new router and swaps it in atomically, so a
// request sees one config from start to finish.
type router struct {
	// byAddr holds the sites of each configured listen address.
	byAddr map[string]*hostTable
	// sockets are the addresses to bind. A specific address whose port a
	// wildcard also listens on (127.0.0.1:80 beside :80) is not bound
	// itself, since the two cannot be bound at once; as in nginx, the
	// wildcard socket serves it, and covered finds its sites by the
	// connection's local address.
	sockets   map[string]bool
	covered   map[string]map[netip.AddrPort]*hostTable
	upstreams *upstreamSet
	// logs and accessLogs: the access log files this router holds open,
	// released in close.
	logs       *LogFiles
	accessLogs []*accessLog
	// acmeCerts are the ACME sites' certificates, whose names the server
	// has managed once this router is in service.
	acmeCerts []*acmeCert
}

// hostTable picks a site on one listen address by the Host header (and
// on a TLS address, a certificate by SNI with the same rules).
type hostTable struct {
	exact     map[string]*site
	wildcards []wildcard // longest suffix first, so the most specific wins
	def       *site
	// tls is the address's TLS config; nil for a plain HTTP address.
	tls *tls.Config
	// clientCA is the tls_client_ca of the address's TLS sites.
	clientCA string
	// h2c: a site lists the address with the h2c flag (h2c.go).
	h2c bool
	// acmeALPN answers TLS-ALPN-01 validations on an address with ACME
	// sites that allow them; nil otherwise.
	acmeALPN *tls.Config
}

type wildcard struct {
	suffix string // ".example.com" for "*.example.com"
	site   *site
}

// site is one virtual host with its locations resolved.
type site struct {
	name     string
	exact    map[string]*location
	prefixes []*location // longest prefix first
	regexes  []*location // `location ~ RE`, in config order
	// someUnlogged is set when a location has `access_log off;`: only
	// then is the location looked up before the access log starts.
	someUnlogged bool
	named        map[string]*location
	access       *accessLog // nil when the access log is off
	// cert is a TLS site's certificate; nil for plain sites.
	cert certSource
	// hsts is the Strict-Transport-Security value sent on TLS requests;
	// "" for none.
	hsts string
	// http3 is `http3 on`: the site's TLS addresses also serve QUIC and
	// its HTTPS responses say so in Alt-Svc (http3.go).
	http3 bool
	// redirect, when set, answers every request instead of the
	// locations: the HTTPS redirect a TLS site serves on its plain HTTP
	// addresses.
	redirect http.Handler
	// purge answers the PURGE method before location matching; nil when
	// the config does not use the cache.
	purge http.Handler
}

// deps are the shared, long-lived things a router is built with.
type deps struct {
	files *static.Cache
	logs  *LogFiles
	apps  func(name string) (AppHandler, bool)
	log   *zap.Logger
	// groups shares upstream groups between routers; nil gives every
	// router its own.
	groups *groupRegistry
	// bound returns the address a configured address is bound to (the
	// real port for port 0), or "" when it is not bound.
	bound func(addr string) string
	// cache is the process's response cache, shared by every router.
	cache *cache.Cache
	// acme obtains the certificates of tls auto and tls on_demand sites.
	acme *acmeManager
}

func buildRouter(cfg *conf.Config, d deps) (*router, error) {
	rt := &router{byAddr: make(map[string]*hostTable), upstreams: newUpstreamSet(d.log, d.groups)}
	access := make(map[string]*accessLog)
	tb := &tlsBuild{storage: cfg.TLSStorage, log: d.log, acme: d.acme}
	for _, sc := range cfg.Sites {
		s, err := buildSite(cfg, sc, d, access, rt.upstreams)
		if err == nil {
			err = rt.addSite(sc, s, tb, d) // see tls.go
		}
		if err != nil {
			rt.releaseShared(d.logs, access)
			return nil, fmt.Errorf("site %s: %w", strings.Join(sc.Names, " "), err)
		}
	}
	for _, t := range rt.byAddr {
		sort.SliceStable(t.wildcards, func(i, j int) bool {
			return len(t.wildcards[i].suffix) > len(t.wildcards[j].suffix)
		})
	}
	if err := rt.finishTLS(tb); err != nil {
		rt.releaseShared(d.logs, access)
		return nil, err
	}
	rt.planSockets()
	rt.acmeCerts = tb.acmeCerts
	rt.logs = d.logs
	for _, a := range access {
		rt.accessLogs = append(rt.accessLogs, a)
	}
	return rt, nil
}

// releaseShared gives back what a router build took from the server's
// shared sets (upstream groups, access log files) when the build fails.
func (rt *router) releaseShared(logs *LogFiles, access map[string]*accessLog) {
	rt.upstreams.close()
	for _, a := range access {
		logs.Release(a.path)
	}
}

// planSockets decides which addresses to bind and which a wildcard serves.
func (rt *router) planSockets() {
	rt.sockets = make(map[string]bool)
	rt.covered = make(map[string]map[netip.AddrPort]*hostTable)
	for addr, t := range rt.byAddr {
		ap, err := netip.ParseAddrPort(addr)
		w := ""
		if err == nil && ap.Port() != 0 && !ap.Addr().IsUnspecified() {
			w = rt.wildcardFor(ap)
		}
		if w == "" {
			rt.sockets[addr] = true
			continue
		}
		if rt.covered[w] == nil {
			rt.covered[w] = make(map[netip.AddrPort]*hostTable)
		}
		rt.covered[w][netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = t
	}
}

// wildcardFor returns the configured wildcard address that also listens
// on ap's port and family, or "". ":PORT" and "[::]:PORT" are dual-stack
// in Go; "0.0.0.0:PORT" covers IPv4 only.
func (rt *router) wildcardFor(ap netip.AddrPort) string {
	port := strconv.Itoa(int(ap.Port()))
	candidates := []string{":" + port, "[::]:" + port}
	if ap.Addr().Unmap().Is4() {
		candidates = append([]string{"0.0.0.0:" + port}, candidates...)
	}
	for _, c := range candidates {
		if rt.byAddr[c] != nil {
			return c
		}
	}
	return ""
}

// close releases the router's static handlers (their root directory
// handles and cached bytes) and stops its upstream groups' health checks.
// Call it only once no request can still be routed through rt.
func (rt *router) close() {
	if rt.upstreams != nil {
		rt.upstreams.close()
	}
	for _, a := range rt.accessLogs {
		rt.logs.Release(a.path)
	}
	seen := make(map[*site]bool)
	for _, t := range rt.byAddr {
		for _, s := range t.allSites() {
			if seen[s] {
				continue
			}
			seen[s] = true
			for _, l := range s.locations() {
				if l.files != nil {
					_ = l.files.Close()
				}
			}
		}
	}
}

func (t *hostTable) allSites() []*site {
	out := []*site{t.def}
	for _, s := range t.exact {
		out = append(out, s)
	}
	for _, w := range t.wildcards {
		out = append(out, w.site)
	}
	return out
}

func (s *site) locations() []*location {
	out := append([]*location(nil), s.prefixes...)
	for _, l := range s.exact {
		out = append(out, l)
	}
	for _, l := range s.named {
		out = append(out, l)
	}
	return out
}

func (rt *router) add(l conf.Listen, names []string, s *site) *hostTable {
	t := rt.byAddr[l.Addr]
	if t == nil {
		t = &hostTable{exact: make(map[string]*site)}
		rt.byAddr[l.Addr] = t
	}
	// The first site on an address is its default until one says `default`.
	if t.def == nil || l.Default {
		t.def = s
	}
	t.h2c = t.h2c || l.H2C
	for _, n := range names {
		n = strings.ToLower(n)
		switch {
		case strings.HasPrefix(n, "*."):
			t.wildcards = append(t.wildcards, wildcard{suffix: n[1:], site: s})
		case n == "_" || n == "":
		default:
			if _, dup := t.exact[n]; !dup {
				t.exact[n] = s
			}
		}
	}
	return t
}

// site returns the site for a request r that arrived on the socket bound
// for addr, chosen by the local address (for specific addresses a wildcard
// serves) and then by the Host header.
func (rt *router) site(addr string, r *http.Request) *site {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	t := rt.tableFor(addr, la)
	if t == nil {
		return nil
	}
	return t.lookup(normalHost(r.Host))
}

// tableFor returns the host table for a connection to local on the
// socket bound for addr: the table of the specific address a wildcard
// socket covers, else addr's own; nil when addr left the config.
func (rt *router) tableFor(addr string, local net.Addr) *hostTable {
	t := rt.byAddr[addr]
	if t == nil {
		return nil
	}
	if c := rt.covered[addr]; c != nil && local != nil {
		if ap, err := netip.ParseAddrPort(local.String()); err == nil {
			if ct := c[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]; ct != nil {
				return ct
			}
		}
	}
	return t
}

// lookup picks a site by normalized host name: exact, then the longest
// wildcard, then the default.
func (t *hostTable) lookup(h string) *site {
	if s, ok := t.exact[h]; ok {
		return s
	}
	for _, w := range t.wildcards {
		if strings.HasSuffix(h, w.suffix) && len(h) > len(w.suffix) {
			return w.site
		}
	}
	return t.def
}

// normalHost lower-cases a Host header and drops the port and a trailing
// dot, so "Example.COM.:8080" finds "example.com".
func normalHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

func buildSite(cfg *conf.Config, sc *conf.Site, d deps, access map[string]*accessLog, ups *upstreamSet) (*site, error) {
	s := &site{
		name:  firstName(sc.Names),
		http3: sc.HTTP3,
		exact: make(map[string]*location),
		named: make(map[string]*location),
	}
	if d.cache != nil && cfg.UsesCache() {
		s.purge = d.cache.PurgeHandler()
	}
	al := cfg.AccessLog
	if sc.AccessLog.Set {
		al = sc.AccessLog
	}
	if !al.Off && al.Path != "" {
		key := al.Path + "\x00" + al.Format
		if access[key] == nil {
			a, err := newAccessLog(d.logs, al.Path, al.Format)
			if err != nil {
				return nil, err
			}
			access[key] = a
		}
		s.access = access[key]
	}
	locs := sc.Locations
	if !hasRootLocation(locs) {
		// Site-level directives behave as an implicit `location / { }`.
		locs = append(locs, &conf.Location{Pos: sc.Pos, Kind: conf.Prefix, Path: "/", Route: sc.Route, MaxBodyBytes: sc.MaxBodyBytes})
	}
	for _, lc := range locs {
		l, err := buildLocation(s, sc, lc, d, ups)
		if err != nil {
			return nil, fmt.Errorf("location %s: %w", lc.Path, err)
		}
		l.noAccessLog = lc.NoAccessLog
		s.someUnlogged = s.someUnlogged || lc.NoAccessLog
		switch lc.Kind {
		case conf.Exact:
			s.exact[lc.Path] = l
		case conf.Named:
			s.named[lc.Path] = l
		case conf.Regex:
			l.re = lc.Regexp
			l.ret = l.ret.withCaptures(lc.Regexp)
			s.regexes = append(s.regexes, l)
		default:
			l.noRegex = lc.Kind == conf.PrefixNoRegex
			s.prefixes = append(s.prefixes, l)
		}
	}
	sort.SliceStable(s.prefixes, func(i, j int) bool { return len(s.prefixes[i].path) > len(s.prefixes[j].path) })
	return s, nil
}

func hasRootLocation(locs []*conf.Location) bool {
	for _, l := range locs {
		if (l.Kind == conf.Prefix || l.Kind == conf.PrefixNoRegex) && l.Path == "/" {
			return true
		}
	}
	return false
}

func firstName(names []string) string {
	if len(names) == 0 {
		return "_"
	}
	return names[0]
}

func buildLocation(s *site, sc *conf.Site, lc *conf.Location, d deps, ups *upstreamSet) (*location, error) {
	rc := lc.Route
	l := &location{
		site:       s,
		path:       lc.Path,
		ret:        newReturnRule(rc.Return),
		tryFiles:   rc.TryFiles,
		errorPages: rc.ErrorPages,
		maxBody:    lc.MaxBodyBytes,
	}
	if len(rc.AddHeaders) > 0 {
		l.addHeaders = rc.AddHeaders
	}
	if len(rc.Access) > 0 {
		l.access, l.trusted = rc.Access, sc.TrustedProxies
	}
	if rc.AuthUsers != nil {
		l.auth = newBasicAuth(rc.AuthRealm, rc.AuthUsers.Path, rc.AuthUsers.Users, d.log)
	}
	if rc.Compress != nil {
		c, err := newCompressor(rc.Compress)
		if err != nil {
			return nil, err
		}
		l.compress = c
	}
	switch {
	case rc.App != "":
		var ok bool
		if d.apps != nil {
			l.backend, ok = d.apps(rc.App)
		}
		if !ok {
			return nil, fmt.Errorf("no app named %q is running", rc.App)
		}
	case rc.Proxy != nil:
		h, err := ups.handler(rc.Proxy, sc.TrustedProxies, fmt.Sprintf("%s%s", firstName(sc.Names), lc.Path))
		if err != nil {
			return nil, err
		}
		l.backend = h
	case rc.UpstreamStatus:
		l.backend = ups.statusHandler()
	case rc.CachePurge:
		l.backend = purgeBackend{d.cache.PurgeHandler()}
	}
	if rc.Cache != nil {
		h, err := wrapCache(d.cache, l, rc.Cache)
		if err != nil {
			return nil, err
		}
		l.cache = h
	}
	dir, strip := rc.Root, ""
	if rc.Alias != "" {
		dir, strip = rc.Alias, lc.Path
	}
	if dir == "" {
		if rc.CGI != nil {
			return nil, fmt.Errorf("cgi needs a root or alias")
		}
		return l, nil
	}
	opts := static.Options{
		Root:           dir,
		StripPrefix:    strip,
		Index:          rc.Index,
		Autoindex:      isOn(rc.Autoindex),
		FollowSymlinks: isOn(rc.FollowSymlinks),
		AllowHidden:    isOn(rc.HiddenFiles),
		Precompressed:  rc.Precompressed,
		Log:            d.log.With(zap.String("site", s.name)),
	}
	if rc.Expires != nil {
		opts.Expires = *rc.Expires
	}
	h, err := static.New(opts, d.files)
	if err != nil {
		return nil, err
	}
	l.files = h
	if rc.CGI != nil {
		c, err := newCGIHandler(rc.CGI, cgiOptions{files: h, dir: dir, strip: strip, follow: opts.FollowSymlinks, site: s.name, log: d.log})
		if err != nil {
			return nil, err
		}
		l.backend = c
	}
	return l, nil
}

func isOn(b *bool) bool { return b != nil && *b }

// newCompressor builds a location's compressor. conf has checked every
// value already; an error here means the two disagree, and is reported at
// the compress line.
func newCompressor(cc *conf.Compress) (*compress.Compressor, error) {
	opts := compress.Options{
		Algorithms: cc.Algorithms,
		Levels:     cc.Levels,
		MinLength:  cc.MinLength,
		Types:      cc.Types,
	}
	if opts.MinLength == 0 {
		opts.MinLength = -1 // conf's 0 is "every non-empty body"; the package's 0 is "default"
	}
	c, err := compress.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cc.Pos, err)
	}
	return c, nil
}

// match finds the location for a path in nginx's order: an exact match;
// else the longest prefix if it is `^~`; else the first regex location,
// in config order, that matches; else the longest prefix.
func (s *site) match(path string) *location {
	if l, ok := s.exact[path]; ok {
		return l
	}
	var prefix *location
	for _, l := range s.prefixes {
		if strings.HasPrefix(path, l.path) {
			prefix = l
			break
		}
	}
	if prefix != nil && prefix.noRegex {
		return prefix
	}
	for _, l := range s.regexes {
		if l.re.MatchString(path) {
			return l
		}
	}
	return prefix
}

// unlogged reports whether r's path picks a location with access_log off.
func (s *site) unlogged(r *http.Request) bool {
	if !s.someUnlogged {
		return false
	}
	l := s.match(r.URL.Path)
	return l != nil && l.noAccessLog
}

// serveLogged is serve through a recorder, writing the access log line
// after. listenerHandler picks it or serve, so that neither the deferred
// call nor an extra frame is on the stack of sites that do not log: HTTP/2
// runs each request on a fresh goroutine with a small stack, and a chain
// that outgrows it costs a stack copy per request (see bench/tls.sh).
func (s *site) serveLogged(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	start := time.Now()
	defer s.access.record(r, rec, start)
	s.serve(rec, r)
}

// serve is the site's entry point for one request.
func (s *site) serve(w http.ResponseWriter, r *http.Request) {
	if s.purge != nil && r.Method == "PURGE" {
		// Before the redirect too: purging over loopback plain HTTP works
		// for a TLS site.
		s.purge.ServeHTTP(w, r)
		return
	}
	if s.redirect != nil {
		s.redirect.ServeHTTP(w, r)
		return
	}
	if s.hsts != "" && r.TLS != nil {
		// Only over TLS: RFC 6797 §7.2 forbids it on plain HTTP.
		w.Header().Set("Strict-Transport-Security", s.hsts)
	}
	// dispatch's work, written out to save its frame (see serveLogged).
	l := s.match(r.URL.Path)
	if l == nil {
		writeError(w, http.StatusNotFound)
		return
	}
	l.serve(w, r, r.URL.Path, reqState{})
}

func (s *site) dispatch(w http.ResponseWriter, r *http.Request, path string, st reqState) {
	l := s.match(path)
	if l == nil {
		writeError(w, http.StatusNotFound)
		return
	}
	l.serve(w, r, path, st)
}
