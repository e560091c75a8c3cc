package conf

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// upstreamSchemes are the URL schemes a proxy target may use, in the order
// error messages list them.
var upstreamSchemes = []string{"http", "https", "unix", "uwsgi", "uwsgi+unix"}

// maxUnixPath is the longest unix socket path connect(2) takes on Linux:
// sun_path holds 108 bytes including the terminating NUL. A longer path
// fails only when the first request is proxied, so it is caught here.
const maxUnixPath = 107

// healthDirectives only tune active checks, which health_uri turns on.
var healthDirectives = []string{"health_interval", "health_timeout", "health_status", "health_passes", "health_fails"}

// buildUpstream reads `upstream NAME { ... }` at top level. Like an app,
// the upstream is recorded even when its name is invalid, so `proxy NAME;`
// uses do not add a second error.
func buildUpstream(b *builder, _ *scope, n *node) {
	name := n.Args[0]
	if !appName.MatchString(name.Value) {
		b.errs.add(name.Pos, "invalid upstream name %q: use letters, digits, \"_\", \"-\" and \".\"", name.Value)
	}
	u := &Upstream{Pos: n.Pos, Name: name.Value}
	u.pos.name = name.Pos
	sc := newScope(inUpstream)
	sc.up = u
	b.buildBlock(sc, n.Block)
	lines := 0 // server lines, built or not: a broken one may be the non-backup one
	for _, c := range n.Block {
		if c.Name == "server" {
			lines++
		}
	}
	switch {
	case lines == 0:
		b.errs.add(n.Pos, "upstream %q has no server; add e.g. \"server http://127.0.0.1:8000;\"", u.Name)
	case len(u.Servers) == lines && !slices.ContainsFunc(u.Servers, func(s UpstreamServer) bool { return !s.Backup }):
		b.errs.add(u.pos.firstBackup, "upstream %q: every server is a backup; at least one must not be", u.Name)
	}
	if !sc.written["health_uri"] {
		for _, d := range healthDirectives {
			if at, ok := sc.seen[d]; ok {
				b.errs.add(at, "%q has no effect without health_uri (active checks run only when health_uri is set)", d)
			}
		}
	}
	b.cfg.Upstreams = append(b.cfg.Upstreams, u)
}

// buildServer reads `server URL [weight N] [backup];`; the options may come
// in either order.
func buildServer(b *builder, sc *scope, n *node) {
	a := n.Args[0]
	url, err := parseUpstreamURL(a.Value)
	if err != nil {
		b.argErr(n, a, err)
		return
	}
	s := UpstreamServer{Pos: a.Pos, URL: url, Weight: 1}
	var weightSet bool
	var backupPos Pos
	for i := 1; i < len(n.Args); i++ {
		kw := n.Args[i]
		switch {
		case kw.Value == "backup" && !s.Backup:
			s.Backup, backupPos = true, kw.Pos
		case kw.Value == "weight" && !weightSet:
			if i+1 == len(n.Args) {
				b.argErr(n, kw, fmt.Errorf("%q needs a value after it", kw.Value))
				return
			}
			i++
			w, ok := atLeastOne(b, n, n.Args[i])
			if !ok {
				return
			}
			s.Weight, weightSet = w, true
		case kw.Value == "backup" || kw.Value == "weight":
			b.argErr(n, kw, fmt.Errorf("%q is given twice", kw.Value))
			return
		default:
			b.argErr(n, kw, fmt.Errorf("expected \"weight N\" or \"backup\", got %q", kw.Value))
			return
		}
	}
	u := sc.up
	if first, dup := u.pos.servers[s.URL]; dup {
		b.errs.add(a.Pos, "server %s is already listed in this upstream at %s", s.URL, first)
		return
	}
	if u.pos.servers == nil {
		u.pos.servers = map[string]Pos{}
	}
	u.pos.servers[s.URL] = a.Pos
	if s.Backup && u.pos.firstBackup == (Pos{}) {
		u.pos.firstBackup = backupPos
	}
	u.Servers = append(u.Servers, s)
}

var balancePolicies = []string{"round_robin", "least_conn", "random_two", "ip_hash"}

// buildBalance reads `balance POLICY;` or `balance header|cookie NAME;`.
func buildBalance(b *builder, sc *scope, n *node) {
	p := n.Args[0]
	switch {
	case slices.Contains(balancePolicies, p.Value):
		if len(n.Args) == 2 {
			b.argErr(n, n.Args[1], fmt.Errorf("%q takes no NAME", p.Value))
			return
		}
		sc.up.Balance = p.Value
	case p.Value == "header" || p.Value == "cookie":
		if len(n.Args) == 1 {
			b.argErr(n, p, fmt.Errorf("%q needs a NAME after it (the %s whose value picks the server)", p.Value, p.Value))
			return
		}
		key := n.Args[1]
		if !isToken(key.Value) {
			b.argErr(n, key, fmt.Errorf("invalid %s name %q", p.Value, key.Value))
			return
		}
		sc.up.Balance, sc.up.BalanceKey = p.Value, key.Value
	default:
		b.argErr(n, p, fmt.Errorf("expected round_robin, least_conn, random_two, ip_hash, header NAME or cookie NAME, got %q", p.Value))
	}
}

// buildMaxFails accepts 0: it turns passive health marking off.
func buildMaxFails(b *builder, sc *scope, n *node) {
	c, err := parseCount(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	sc.up.MaxFails, sc.up.maxFailsSet = c, true
}

func buildFailTimeout(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		sc.up.FailTimeout = d
	}
}

func buildFailStatus(b *builder, sc *scope, n *node) {
	if codes, ok := statusList(b, n); ok {
		sc.up.FailStatus = codes
	}
}

func buildRetryStatus(b *builder, sc *scope, n *node) {
	if codes, ok := statusList(b, n); ok {
		sc.up.RetryStatus = codes
	}
}

// statusList reads `CODE...` of 100-599, each once.
func statusList(b *builder, n *node) ([]int, bool) {
	var codes []int
	for _, a := range n.Args {
		c, err := parseStatus(a.Value, 100, 599)
		if err == nil && slices.Contains(codes, c) {
			err = fmt.Errorf("status %d is listed twice", c)
		}
		if err != nil {
			b.argErr(n, a, err)
			return nil, false
		}
		codes = append(codes, c)
	}
	return codes, true
}

// health returns the upstream's health check, creating it: the health_*
// directives may come before health_uri.
func (u *Upstream) health() *HealthCheck {
	if u.Health == nil {
		u.Health = &HealthCheck{}
	}
	return u.Health
}

// buildHealthURI reads `health_uri PATH;` which turns active checks on.
func buildHealthURI(b *builder, sc *scope, n *node) {
	a := n.Args[0]
	var err error
	switch {
	case !strings.HasPrefix(a.Value, "/"):
		err = fmt.Errorf("expected a path starting with \"/\", got %q", a.Value)
	case strings.ContainsFunc(a.Value, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		err = fmt.Errorf("the path must not contain spaces or control characters, got %q", a.Value)
	}
	if err != nil {
		b.argErr(n, a, err)
		return
	}
	sc.up.health().URI = a.Value
}

func buildHealthInterval(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		sc.up.health().Interval = d
	}
}

func buildHealthTimeout(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		sc.up.health().Timeout = d
	}
}

func buildHealthStatus(b *builder, sc *scope, n *node) {
	c, err := parseStatus(n.Args[0].Value, 100, 599)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	sc.up.health().Status = c
}

func buildHealthPasses(b *builder, sc *scope, n *node) {
	if c, ok := atLeastOne(b, n, n.Args[0]); ok {
		sc.up.health().Passes = c
	}
}

func buildHealthFails(b *builder, sc *scope, n *node) {
	if c, ok := atLeastOne(b, n, n.Args[0]); ok {
		sc.up.health().Fails = c
	}
}

// The three upstream timeouts go in an upstream block, or next to an
// inline `proxy URL...;` in a site or location, where nginx users put
// proxy_read_timeout; there they apply to that block's proxy only.

func buildConnectTimeout(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		if sc.up != nil {
			sc.up.ConnectTimeout = d
		} else {
			routeTimeout(sc, n).connect = d
		}
	}
}

func buildFirstByteTimeout(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		if sc.up != nil {
			sc.up.FirstByteTimeout = d
		} else {
			routeTimeout(sc, n).firstByte = d
		}
	}
}

func buildReadTimeout(b *builder, sc *scope, n *node) {
	if d, ok := positiveDuration(b, n); ok {
		if sc.up != nil {
			sc.up.ReadTimeout = d
		} else {
			routeTimeout(sc, n).read = d
		}
	}
}

// routeTimeout notes a timeout line of a site or location block.
func routeTimeout(sc *scope, n *node) *proxyTimeouts {
	t := &sc.route.proxyOpts.timeouts
	if len(t.names) == 0 {
		t.pos = n.Pos
	}
	t.names = append(t.names, n.Name)
	return t
}

// finishInlineTimeouts gives a block's timeout lines to the inline proxy
// of the same block, once the whole block is read (they may come before
// the proxy line). Anywhere else they would do nothing, which is an error.
func finishInlineTimeouts(b *builder, r *Route) {
	t := &r.proxyOpts.timeouts
	if len(t.names) == 0 {
		return
	}
	p := r.Proxy
	switch {
	case p == nil:
		b.errs.add(t.pos, "%s applies to a proxy: put it next to proxy URL in this block, or in an upstream block", t.names[0])
	case p.name != "":
		b.errs.add(t.pos, "%s for upstream %s goes in its upstream block", t.names[0], p.name)
	default:
		u := p.Upstream
		u.ConnectTimeout = cmp.Or(t.connect, u.ConnectTimeout)
		u.FirstByteTimeout = cmp.Or(t.firstByte, u.FirstByteTimeout)
		u.ReadTimeout = cmp.Or(t.read, u.ReadTimeout)
	}
}

func buildTLSVerify(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		sc.up.TLSVerify, sc.up.tlsVerifySet = *v, true
	}
}

// buildTLSCA records the CA file; validate reads it.
func buildTLSCA(b *builder, sc *scope, n *node) {
	sc.up.TLSCA, sc.up.pos.tlsCA = n.path(n.Args[0]), n.Args[0].Pos
}

// buildKeepalive accepts 0: no idle connections are kept.
func buildKeepalive(b *builder, sc *scope, n *node) {
	c, err := parseCount(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	sc.up.Keepalive, sc.up.keepaliveSet = c, true
}

// buildProxy reads `proxy NAME;` or `proxy URL...;`. A NAME is resolved
// once the whole config is read, so an upstream block may come later; URLs
// make an inline upstream with every default.
func buildProxy(b *builder, sc *scope, n *node) {
	p := &Proxy{Pos: n.Pos}
	var servers []UpstreamServer
	ok := true
	for _, a := range n.Args {
		if !strings.Contains(a.Value, ":") { // names cannot hold ":", every URL does
			switch {
			case len(n.Args) > 1:
				b.argErr(n, a, fmt.Errorf("upstream name %q cannot be mixed with other targets; give one upstream name, or URLs only", a.Value))
				ok = false
			case !appName.MatchString(a.Value):
				b.argErr(n, a, fmt.Errorf("expected an upstream name or a URL like http://HOST:PORT, got %q", a.Value))
				ok = false
			default:
				p.name, p.namePos = a.Value, a.Pos
			}
			continue
		}
		url, err := parseUpstreamURL(a.Value)
		if err == nil && slices.ContainsFunc(servers, func(s UpstreamServer) bool { return s.URL == url }) {
			err = fmt.Errorf("server %s is listed twice", url)
		}
		if err != nil {
			b.argErr(n, a, err)
			ok = false
			continue
		}
		servers = append(servers, UpstreamServer{Pos: a.Pos, URL: url, Weight: 1})
	}
	if !ok || !b.claimHandler(sc, n) {
		return
	}
	if p.name == "" {
		p.Upstream = &Upstream{Pos: n.Pos, Inline: true, Servers: servers}
	}
	sc.route.Proxy = p
}

// parseUpstreamURL checks a proxy target URL and returns it with the
// scheme lower-cased. Paths are refused rather than given nginx's
// proxy_pass meaning (replace the location prefix), which surprises people
// in both directions.
func parseUpstreamURL(s string) (string, error) {
	scheme, rest, found := strings.Cut(s, ":")
	scheme = strings.ToLower(scheme)
	switch {
	case !found || (!slices.Contains(upstreamSchemes, scheme) && !strings.HasPrefix(rest, "//")):
		return "", fmt.Errorf("expected a URL like http://HOST:PORT or unix:/PATH, got %q", s)
	case !slices.Contains(upstreamSchemes, scheme):
		return "", fmt.Errorf("unknown scheme %q in %q; expected http, https, unix, uwsgi or uwsgi+unix", scheme, s)
	case scheme == "unix" || scheme == "uwsgi+unix":
		if err := checkSocketPath(rest, scheme); err != nil {
			return "", err
		}
	default:
		hostport, ok := strings.CutPrefix(rest, "//")
		if !ok {
			return "", fmt.Errorf("expected %s://HOST:PORT, got %q", scheme, s)
		}
		if i := strings.IndexAny(hostport, "/?#"); i >= 0 {
			return "", fmt.Errorf("proxy URLs take no path or query (the request's own are sent), got %q", s)
		}
		if strings.Contains(hostport, "@") {
			return "", fmt.Errorf("proxy URLs take no user:password, got %q", s)
		}
		if err := checkHostPort(hostport, s); err != nil {
			return "", err
		}
	}
	return scheme + ":" + rest, nil
}

// checkSocketPath checks the PATH of unix:/PATH: absolute, because a
// socket's path relative to the config file is rarely what is meant, and
// short enough to connect to.
func checkSocketPath(path, scheme string) error {
	switch {
	case strings.HasPrefix(path, "//"):
		return fmt.Errorf("expected %s:/PATH with a single \"/\", got %q", scheme, scheme+":"+path)
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("unix socket path must be absolute, got %q", path)
	case len(path) > maxUnixPath:
		return fmt.Errorf("unix socket path is longer than %d bytes: %q", maxUnixPath, path)
	}
	return nil
}

// checkHostPort checks the HOST:PORT of an http, https or uwsgi URL; the
// port is required, there is no scheme default.
func checkHostPort(hostport, url string) error {
	host, port, err := net.SplitHostPort(hostport)
	switch {
	case err != nil:
		return fmt.Errorf("expected HOST:PORT in %q (the port is required)", url)
	case host == "":
		return fmt.Errorf("missing host in %q", url)
	case !isIP(host) && !isHostname(host):
		return fmt.Errorf("invalid host %q in %q: want an IP address or host name", host, url)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return fmt.Errorf("invalid port %q in %q: want a number from 1 to 65535", port, url)
	}
	return nil
}

// buildProxySetHeader reads `proxy_set_header NAME VALUE;`; each NAME once
// per block (case-insensitive, like header names).
func buildProxySetHeader(b *builder, sc *scope, n *node) {
	name, val := n.Args[0], n.Args[1]
	if !isToken(name.Value) {
		b.argErr(n, name, fmt.Errorf("invalid header name %q: use letters, digits and !#$%%&'*+-.^_`|~", name.Value))
		return
	}
	if err := checkHeaderValue(val.Value); err != nil {
		b.argErr(n, val, err)
		return
	}
	o := &sc.route.proxyOpts
	key := strings.ToLower(name.Value)
	if first, dup := o.headerPos[key]; dup {
		b.errs.add(name.Pos, "proxy_set_header %s is already set in this block at %s", name.Value, first)
		return
	}
	if o.headerPos == nil {
		o.headerPos = map[string]Pos{}
	}
	o.headerPos[key] = name.Pos
	o.headers = append(o.headers, ProxyHeader{Name: name.Value, Value: val.Value})
}

// headerVars are the variables a proxy_set_header value may use; edge
// expands them per request.
var headerVars = []string{"host", "remote_addr", "scheme", "request_uri", "uri", "args", "query_string"}

// checkHeaderValue refuses line breaks and NUL (they would split or end
// the header) and unknown $variables: nginx configs often carry ones
// tandem does not have ($proxy_add_x_forwarded_for, $http_upgrade), which
// would otherwise be sent literally. A variable name is "$" and the
// letters and "_" after it, as edge reads it.
func checkHeaderValue(v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("header values must not contain line breaks or NUL")
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(v) && (v[j] == '_' || v[j] >= 'a' && v[j] <= 'z' || v[j] >= 'A' && v[j] <= 'Z') {
			j++
		}
		if name := v[i+1 : j]; name != "" && !slices.Contains(headerVars, name) {
			if hint := nginxVarHints[name]; hint != "" {
				return fmt.Errorf("unknown variable $%s: %s", name, hint)
			}
			return fmt.Errorf("unknown variable $%s; available: $host, $remote_addr, $scheme, $request_uri, $uri, $args", name)
		}
		i = j - 1
	}
	return nil
}

func buildProxyBuffering(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		sc.route.proxyOpts.buffering = v
	}
}

func buildUpstreamStatus(b *builder, sc *scope, n *node) {
	if b.claimHandler(sc, n) {
		sc.route.UpstreamStatus = true
	}
}

// privateRanges is what `trusted_proxies private;` stands for: loopback,
// RFC 1918 and IPv6 unique local addresses.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
}

// buildTrustedProxies reads `trusted_proxies CIDR|ADDR|private...;` and
// appends to the block's list. Prefixes are stored masked (10.1.2.3/8 is
// 10.0.0.0/8).
func buildTrustedProxies(b *builder, sc *scope, n *node) {
	var list []netip.Prefix
	for _, a := range n.Args {
		if a.Value == "private" {
			list = append(list, privateRanges...)
			continue
		}
		p, err := parseTrustedPrefix(a.Value)
		if err != nil {
			b.argErr(n, a, err)
			return
		}
		list = append(list, p)
	}
	if sc.site != nil {
		sc.site.TrustedProxies = append(sc.site.TrustedProxies, list...)
	} else {
		b.cfg.TrustedProxies = append(b.cfg.TrustedProxies, list...)
	}
}

func parseTrustedPrefix(s string) (netip.Prefix, error) {
	bad := fmt.Errorf("expected a CIDR like 10.0.0.0/8, an IP address or private, got %q", s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, bad
		}
		return p.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, bad
	}
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the
// syntax of header names and cookie names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
