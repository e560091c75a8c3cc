package conf

import (
	"fmt"
	"slices"
	"strings"
)

// blockKind is where a directive may appear; a directive's contexts are a
// bit set of these.
type blockKind uint8

const (
	inMain       blockKind = 1 << iota // top level of a file
	inSite                             // inside site { }
	inLocation                         // inside location { }
	inApp                              // inside app NAME { }
	inUpstream                         // inside upstream NAME { }
	inCache                            // inside the top-level cache { }
	inRouteCache                       // inside cache { } in a site or location
)

var blockNames = []struct {
	k    blockKind
	name string
}{{inMain, "main"}, {inSite, "site"}, {inLocation, "location"}, {inApp, "app"}, {inUpstream, "upstream"}, {inCache, "cache"}, {inRouteCache, "site or location cache"}}

func (k blockKind) String() string {
	var parts []string
	for _, b := range blockNames {
		if k&b.k != 0 {
			parts = append(parts, b.name)
		}
	}
	return strings.Join(parts, ", ")
}

// directive describes one directive: where it may appear, its shape, and
// the function that maps it into the model. Adding a directive is one entry
// in the table below plus one build function.
type directive struct {
	in       blockKind
	min, max int  // argument count bounds; max < 0 means no upper bound
	block    bool // a { } block is required (and otherwise forbidden)
	// repeat allows the directive more than once per block; otherwise a
	// second occurrence is an error pointing at the first.
	repeat bool
	// hint is appended to the wrong-context error.
	hint  string
	build func(b *builder, sc *scope, n *node)
	// also is the same name with another shape in other contexts: `app
	// NAME { }` defines an app at top level, `app NAME;` uses it in a site
	// or location. Variants whose contexts overlap must differ in block:
	// `cache 10m;` and `cache { }` are both allowed in a location.
	also *directive
}

// forContext returns the variant of d allowed in kind (or d itself when
// none is), preferring the one whose block shape matches hasBlock when
// several are, and the union of every variant's contexts, for the
// wrong-context message.
func (d directive) forContext(kind blockKind, hasBlock bool) (directive, blockKind) {
	found, all, exact := d, blockKind(0), false
	for v := &d; v != nil; v = v.also {
		all |= v.in
		if v.in&kind != 0 && !exact {
			found, exact = *v, v.block == hasBlock
		}
	}
	return found, all
}

const anyBlock = inMain | inSite | inLocation
const routeBlocks = inSite | inLocation

// directives is the read-only table of every known directive. It is filled
// in init because the block directives' build functions walk the table
// themselves, which a plain initializer would reject as a cycle.
var directives map[string]directive

func init() {
	directives = map[string]directive{
		// include is expanded by the parser; it is listed for arity checks,
		// suggestions and the documentation test.
		"include": {in: anyBlock | inApp | inUpstream, min: 1, max: 1, repeat: true},

		// main
		"site":             {in: inMain, min: 1, max: -1, block: true, repeat: true, build: buildSite},
		"pid_file":         {in: inMain, min: 1, max: 1, build: buildPIDFile},
		"error_log":        {in: inMain, min: 1, max: 2, build: buildErrorLog},
		"shutdown_timeout": {in: inMain, min: 1, max: 1, build: buildShutdownTimeout},
		"header_timeout":   {in: inMain, min: 1, max: 1, build: buildHeaderTimeout},
		"body_timeout":     {in: inMain, min: 1, max: 1, build: buildBodyTimeout},
		"idle_timeout":     {in: inMain, min: 1, max: 1, build: buildIdleTimeout},
		"write_timeout":    {in: inMain, min: 1, max: 1, build: buildWriteTimeout},
		"max_header_size":  {in: inMain, min: 1, max: 1, build: buildMaxHeaderSize},
		"max_connections":  {in: inMain, min: 1, max: 1, build: buildMaxConnections},
		"tls_storage":      {in: inMain, min: 1, max: 1, build: buildTLSStorage},
		"tls_renew_check":  {in: inMain, min: 1, max: 1, build: buildTLSRenewCheck},

		// main and site
		"access_log":      {in: inMain | inSite | inLocation, min: 1, max: 2, build: buildAccessLog},
		"trusted_proxies": {in: inMain | inSite, min: 1, max: -1, repeat: true, build: buildTrustedProxies},

		// ACME (see build_acme.go): how tls auto and tls on_demand sites
		// get certificates; top-level values are the sites' defaults.
		"acme_ca":         {in: inMain | inSite, min: 1, max: 1, build: buildACMECA},
		"acme_ca_root":    {in: inMain | inSite, min: 1, max: 1, build: buildACMECARoot},
		"acme_email":      {in: inMain | inSite, min: 1, max: 1, build: buildACMEEmail},
		"acme_challenges": {in: inMain | inSite, min: 1, max: 2, build: buildACMEChallenges},

		// everywhere a request limit makes sense
		"client_max_body_size": {in: anyBlock, min: 1, max: 1, build: buildMaxBodySize},

		// site only
		"listen": {in: inSite, min: 1, max: -1, repeat: true, build: buildListen},
		"location": {in: inSite, min: 1, max: 2, block: true, repeat: true, build: buildLocation,
			hint: "nested locations are not supported; move it up into the site block"},

		// TLS (see build_tls.go): how a site serves HTTPS, per site.
		"tls":           {in: inSite, min: 1, max: 3, build: buildTLS},
		"tls_client_ca": {in: inSite, min: 1, max: 1, build: buildTLSClientCA},
		"hsts":          {in: inSite, min: 1, max: 3, build: buildHSTS},
		"http_redirect": {in: inSite, min: 1, max: 1, build: buildHTTPRedirect},
		"http3":         {in: inSite, min: 1, max: 1, build: buildHTTP3}, // build_http3.go

		// site and location: how a request is handled
		"root":                 {in: routeBlocks, min: 1, max: 1, build: buildRoot},
		"alias":                {in: inLocation, min: 1, max: 1, build: buildAlias, hint: "use root at site level"},
		"index":                {in: routeBlocks, min: 1, max: -1, build: buildIndex},
		"try_files":            {in: routeBlocks, min: 2, max: -1, build: buildTryFiles},
		"static":               {in: routeBlocks, min: 0, max: 0, build: buildStatic},
		"return":               {in: routeBlocks, min: 1, max: 2, build: buildReturn},
		"redirect":             {in: routeBlocks, min: 1, max: 2, build: buildRedirect},
		"expires":              {in: routeBlocks, min: 1, max: 1, build: buildExpires},
		"autoindex":            {in: routeBlocks, min: 1, max: 1, build: buildAutoindex},
		"follow_symlinks":      {in: routeBlocks, min: 1, max: 1, build: buildFollowSymlinks},
		"hidden_files":         {in: routeBlocks, min: 1, max: 1, build: buildHiddenFiles},
		"precompressed":        {in: routeBlocks, min: 1, max: -1, build: buildPrecompressed},
		"error_page":           {in: routeBlocks, min: 2, max: -1, repeat: true, build: buildErrorPage},
		"add_header":           {in: routeBlocks, min: 2, max: 3, repeat: true, build: buildAddHeader},
		"allow":                {in: routeBlocks, min: 1, max: 1, repeat: true, build: buildAccess},
		"deny":                 {in: routeBlocks, min: 1, max: 1, repeat: true, build: buildAccess},
		"auth_basic":           {in: routeBlocks, min: 1, max: 1, build: buildAuthBasic},
		"auth_basic_user_file": {in: routeBlocks, min: 1, max: 1, build: buildAuthBasicUserFile},

		// compression (see build_compress.go): compress turns it on; the
		// other three apply to the block and, at site level, are defaults
		// for its locations, each inherited on its own.
		"compress":            {in: routeBlocks, min: 1, max: -1, build: buildCompress},
		"compress_level":      {in: routeBlocks, min: 2, max: 2, repeat: true, build: buildCompressLevel},
		"compress_min_length": {in: routeBlocks, min: 1, max: 1, build: buildCompressMinLength},
		"compress_types":      {in: routeBlocks, min: 1, max: -1, build: buildCompressTypes},

		// proxying (see build_upstream.go): proxy is a handler like app;
		// proxy_set_header and proxy_buffering apply to the block's proxy
		// and, at site level, to its locations' proxies.
		"proxy":            {in: routeBlocks, min: 1, max: -1, build: buildProxy},
		"proxy_set_header": {in: routeBlocks, min: 2, max: 2, repeat: true, build: buildProxySetHeader},
		"proxy_buffering":  {in: routeBlocks, min: 1, max: 1, build: buildProxyBuffering},
		"upstream_status": {in: inLocation, min: 0, max: 0, build: buildUpstreamStatus,
			hint: "give it a location of its own, e.g. location = /upstreams { upstream_status; }"},

		// CGI (see build_cgi.go): cgi is a handler like proxy; cgi_timeout
		// and cgi_env apply to the block's scripts and, at site level, to
		// its locations' scripts.
		"cgi":         {in: routeBlocks, min: 0, max: 0, build: buildCGI},
		"cgi_timeout": {in: routeBlocks, min: 1, max: 1, build: buildCGITimeout},
		"cgi_env":     {in: routeBlocks, min: 2, max: 2, repeat: true, build: buildCGIEnv},

		// response cache (see build_cache.go): `cache { }` at top level
		// configures the process's one store; `cache DURATION|on|off;`,
		// `cache { }` and cache_key in a site or location say whether and
		// how it caches.
		"cache": {in: inMain, min: 0, max: 0, block: true, build: buildCacheStore,
			also: &directive{in: routeBlocks, min: 1, max: 1, build: buildCache,
				also: &directive{in: routeBlocks, min: 0, max: 0, block: true, build: buildCacheBlock}}},
		"cache_key": {in: routeBlocks, min: 1, max: 1, build: buildCacheKey},
		"cache_purge": {in: inLocation, min: 0, max: 0, build: buildCachePurgeHandler,
			hint: "give it a location of its own, e.g. location = /_tandem/purge { cache_purge; }"},
		"max_size":       {in: inCache, min: 1, max: 1, build: buildCacheMaxSize},
		"max_entry_size": {in: inCache, min: 1, max: 1, build: buildCacheMaxEntrySize},
		"disk":           {in: inCache, min: 2, max: 2, build: buildCacheDisk},
		"lock_timeout":   {in: inCache, min: 1, max: 1, build: buildCacheLockTimeout},
		"purge":          {in: inCache, min: 1, max: -1, build: buildCachePurge},
		// inside `cache { }` in a site or location: the location's policy
		"valid":                       {in: inRouteCache, min: 1, max: 1, build: buildCacheValid},
		"key":                         {in: inRouteCache, min: 1, max: 1, build: buildCacheKey},
		"stale_while_revalidate":      {in: inRouteCache, min: 1, max: 1, build: buildCacheStaleWhileRevalidate},
		"stale_if_error":              {in: inRouteCache, min: 1, max: 1, build: buildCacheStaleIfError},
		"ignore_client_cache_control": {in: inRouteCache, min: 1, max: 1, build: buildCacheIgnoreClientCC},

		// `upstream NAME { }` at top level: the servers `proxy NAME;` uses.
		"upstream": {in: inMain, min: 1, max: 1, block: true, repeat: true, build: buildUpstream},

		// `app NAME { }` at top level defines an app; `app NAME;` in a site
		// or location is the handler that sends requests to it.
		"app": {in: inMain, min: 1, max: 1, block: true, repeat: true, build: buildApp,
			also: &directive{in: routeBlocks, min: 1, max: 1, build: buildAppRef}},

		// app only (see build_app.go)
		"wsgi":             {in: inApp, min: 1, max: 1, build: buildWSGI},
		"asgi":             {in: inApp, min: 1, max: 1, build: buildASGI},
		"command":          {in: inApp, min: 1, max: -1, build: buildCommand},
		"python":           {in: inApp, min: 1, max: 1, build: buildPython},
		"chdir":            {in: inApp, min: 1, max: 1, build: buildChdir},
		"env":              {in: inApp, min: 2, max: 2, repeat: true, build: buildEnv},
		"workers":          {in: inApp, min: 1, max: 1, build: buildWorkers},
		"min_workers":      {in: inApp, min: 1, max: 1, build: buildMinWorkers},
		"max_workers":      {in: inApp, min: 1, max: 1, build: buildMaxWorkers},
		"timeout":          {in: inApp, min: 1, max: 1, build: buildAppTimeout},
		"graceful_timeout": {in: inApp, min: 1, max: 1, build: buildGracefulTimeout},
		"max_requests":     {in: inApp, min: 1, max: 3, build: buildMaxRequests},
		"max_lifetime":     {in: inApp, min: 1, max: 3, build: buildMaxLifetime},
		"max_memory":       {in: inApp, min: 1, max: 1, build: buildMaxMemory},
		"preload":          {in: inApp, min: 1, max: 1, build: buildPreload},
		"pipeline":         {in: inApp, min: 1, max: 1, build: buildPipeline},
		"cpu_scheduling":   {in: inApp, min: 1, max: 1, build: buildCPUScheduling},
		"queue":            {in: inApp, min: 1, max: 3, build: buildQueue},
		"user":             {in: inApp, min: 1, max: 1, build: buildUser},
		"group":            {in: inApp, min: 1, max: 1, build: buildGroup},

		// upstream only (see build_upstream.go)
		"server": {in: inUpstream, min: 1, max: 4, repeat: true, build: buildServer,
			hint: "a virtual host is a site NAME { } block"},
		"balance":            {in: inUpstream, min: 1, max: 2, build: buildBalance},
		"max_fails":          {in: inUpstream, min: 1, max: 1, build: buildMaxFails},
		"fail_timeout":       {in: inUpstream, min: 1, max: 1, build: buildFailTimeout},
		"fail_status":        {in: inUpstream, min: 1, max: -1, build: buildFailStatus},
		"health_uri":         {in: inUpstream, min: 1, max: 1, build: buildHealthURI},
		"health_interval":    {in: inUpstream, min: 1, max: 1, build: buildHealthInterval},
		"health_timeout":     {in: inUpstream, min: 1, max: 1, build: buildHealthTimeout},
		"health_status":      {in: inUpstream, min: 1, max: 1, build: buildHealthStatus},
		"health_passes":      {in: inUpstream, min: 1, max: 1, build: buildHealthPasses},
		"health_fails":       {in: inUpstream, min: 1, max: 1, build: buildHealthFails},
		"connect_timeout":    {in: inUpstream | routeBlocks, min: 1, max: 1, build: buildConnectTimeout},
		"first_byte_timeout": {in: inUpstream | routeBlocks, min: 1, max: 1, build: buildFirstByteTimeout},
		"read_timeout":       {in: inUpstream | routeBlocks, min: 1, max: 1, build: buildReadTimeout},
		"retry_status":       {in: inUpstream, min: 1, max: -1, build: buildRetryStatus},
		"tls_verify":         {in: inUpstream, min: 1, max: 1, build: buildTLSVerify},
		"tls_ca":             {in: inUpstream, min: 1, max: 1, build: buildTLSCA},
		"keepalive":          {in: inUpstream, min: 1, max: 1, build: buildKeepalive},
	}
}

// directiveNames returns every known directive name, sorted.
func directiveNames() []string {
	names := make([]string, 0, len(directives))
	for name := range directives {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// checkShape reports a wrong argument count or a missing/unexpected block.
// It returns false when the directive must not be built.
func checkShape(errs *errList, n *node, d directive) bool {
	ok := true
	if got := len(n.Args); got < d.min || (d.max >= 0 && got > d.max) {
		hint := ""
		if got > d.min {
			hint = semicolonHint(n)
		}
		errs.add(n.Pos, "%q takes %s, got %d%s", n.Name, arity(d.min, d.max), got, hint)
		ok = false
	}
	switch {
	case d.block && !n.HasBlock:
		errs.add(n.Pos, "%q needs a { ... } block", n.Name)
		ok = false
	case !d.block && n.HasBlock:
		errs.add(n.Pos, "%q does not take a { ... } block%s", n.Name, semicolonHint(n))
		ok = false
	}
	return ok
}

// semicolonHint names the likely cause when a directive swallowed the next
// line: an unquoted argument on a later line that is itself a directive
// name ("wsgi app:application" then "workers 4;" reads as wsgi with three
// arguments). It returns "" when nothing points that way.
func semicolonHint(n *node) string {
	prev := n.Pos.Line // the line the directive's last word so far is on
	for _, a := range n.Args {
		if a.Pos.Line > prev {
			if _, known := directives[a.Value]; known && !a.Quoted {
				return fmt.Sprintf(`; is a ";" missing at the end of line %d, before %q?`, prev, a.Value)
			}
			return ""
		}
		prev = a.Pos.Line
	}
	return ""
}

func arity(lo, hi int) string {
	plural := func(n int) string {
		if n == 1 {
			return "1 argument"
		}
		return fmt.Sprintf("%d arguments", n)
	}
	switch {
	case lo == hi && lo == 0:
		return "no arguments"
	case lo == hi:
		return plural(lo)
	case hi < 0:
		return "at least " + plural(lo)
	case hi == lo+1:
		return fmt.Sprintf("%d or %s", lo, plural(hi))
	}
	return fmt.Sprintf("%d to %s", lo, plural(hi))
}

// suggest returns the known directive closest to name when it is within
// edit distance 2 (ties go to the alphabetically first), or "". The
// distance must also be shorter than name, so "ab" suggests nothing rather
// than any two-letter rewrite.
func suggest(name string) string {
	return closest(name, directiveNames())
}

// closest returns the candidate within edit distance 2 of name, under
// suggest's rules; cands must be sorted.
func closest(name string, cands []string) string {
	best, bestDist := "", 3
	for _, cand := range cands {
		if abs(len(name)-len(cand)) >= bestDist {
			continue // the distance is at least the length difference
		}
		if d := editDistance(name, cand); d < bestDist && d < len(name) {
			best, bestDist = cand, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
