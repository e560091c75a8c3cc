package conf

import (
	"cmp"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

// Defaults, in one place. The model's field comments document the same
// values; TestDefaults pins them.
const (
	defaultShutdownTimeout = 30 * time.Second
	defaultHeaderTimeout   = 10 * time.Second
	defaultBodyTimeout     = 60 * time.Second
	defaultIdleTimeout     = 75 * time.Second
	defaultMaxHeaderBytes  = 1 << 20
	defaultMaxBodyBytes    = 1 << 20

	defaultPython          = "/usr/bin/python3" // when it exists
	defaultPythonFromPath  = "python3"          // otherwise
	defaultAppTimeout      = 30 * time.Second
	defaultGracefulTimeout = 30 * time.Second
	defaultQueue           = 1024
	defaultQueueTimeout    = 30 * time.Second

	defaultBalance          = "round_robin"
	defaultMaxFails         = 1
	defaultFailTimeout      = 10 * time.Second
	defaultHealthInterval   = 5 * time.Second
	defaultHealthTimeout    = 2 * time.Second
	defaultHealthStatus     = 200
	defaultHealthPasses     = 1
	defaultHealthFails      = 1
	defaultConnectTimeout   = 5 * time.Second
	defaultFirstByteTimeout = 60 * time.Second
	defaultReadTimeout      = 60 * time.Second
	defaultKeepalive        = 32
	defaultProxyBuffering   = true

	defaultCGITimeout = 60 * time.Second
)

// defaultWorkers is gunicorn's rule of thumb, 2 × cores + 1.
func defaultWorkers() int { return 2*runtime.NumCPU() + 1 }

func defaultIndex() []string         { return []string{"index.html"} }
func defaultPrecompressed() []string { return []string{"zstd", "br", "gzip"} }

// DefaultStateDir is where tandem keeps state that outlives a run (the
// internal CA and its certificates): /var/lib/tandem for root; otherwise
// $XDG_STATE_HOME/tandem when that is set, else ~/.local/state/tandem
// (the XDG base directory rules), else tandem-state in the working
// directory, made absolute.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/tandem"
	}
	if dir := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "tandem")
	}
	if home, err := os.UserHomeDir(); err == nil && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "tandem")
	}
	if abs, err := filepath.Abs("tandem-state"); err == nil {
		return abs
	}
	return "tandem-state"
}

// DefaultTLSStorage is tls_storage's default: "tls" under DefaultStateDir.
func DefaultTLSStorage() string { return filepath.Join(DefaultStateDir(), "tls") }

// DefaultPIDFile is where the pid file goes without pid_file: /run/tandem.pid
// for root; otherwise $XDG_RUNTIME_DIR/tandem.pid when that is set (stable
// no matter where tandem is started from); otherwise tandem.pid in the
// working directory, made absolute.
func DefaultPIDFile() string {
	if os.Geteuid() == 0 {
		return "/run/tandem.pid"
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "tandem.pid")
	}
	if abs, err := filepath.Abs("tandem.pid"); err == nil {
		return abs
	}
	return "tandem.pid"
}

// applyDefaults fills every unset field, top-down, so that sites see the
// final global values and locations see their site's final values. It
// also resolves `proxy NAME;` to its upstream block, which validate has
// checked exists.
func applyDefaults(cfg *Config, e env) {
	applyMainDefaults(cfg)
	for _, a := range cfg.Apps {
		applyAppDefaults(a, e)
	}
	upstreams := map[string]*Upstream{}
	for _, u := range cfg.Upstreams {
		applyUpstreamDefaults(u)
		upstreams[u.Name] = u
	}
	for _, s := range cfg.Sites {
		applySiteDefaults(s, cfg)
		finishProxy(&s.Route, upstreams)
		finishCGI(&s.Route)
		finishCompress(&s.Route)
		finishCache(&s.Route)
		for _, l := range s.Locations {
			applyLocationDefaults(l, s)
			finishProxy(&l.Route, upstreams)
			finishCGI(&l.Route)
			finishCompress(&l.Route)
			finishCache(&l.Route)
		}
	}
}

func applyMainDefaults(cfg *Config) {
	if cfg.PIDFile == "" {
		cfg.PIDFile = DefaultPIDFile()
	}
	if cfg.ErrorLog.Path == "" {
		cfg.ErrorLog.Path, cfg.ErrorLog.Level = "stderr", "info"
	}
	if !cfg.AccessLog.Set {
		cfg.AccessLog.Off = true
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = defaultShutdownTimeout
	}
	if cfg.TLSStorage == "" {
		cfg.TLSStorage = DefaultTLSStorage()
	}
	if cfg.TLSRenewCheck == 0 {
		cfg.TLSRenewCheck = defaultTLSRenewCheck
	}
	applyLimitsDefaults(&cfg.Limits)
}

func applyLimitsDefaults(l *Limits) {
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = defaultHeaderTimeout
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = defaultBodyTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = defaultIdleTimeout
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if l.MaxBodyBytes < 0 {
		l.MaxBodyBytes = defaultMaxBodyBytes
	}
}

// applyAppDefaults fills an app's unset fields. Workers defaults to
// 2 × cores + 1 kept within min_workers/max_workers when those are set;
// unset bounds equal Workers (no automatic scaling).
func applyAppDefaults(a *App, e env) {
	if a.Python == "" {
		a.Python = defaultPythonFromPath
		if e.checkExec(defaultPython) == nil {
			a.Python = defaultPython
		}
	}
	if a.Chdir == "" {
		a.Chdir = a.dir
	}
	if a.Workers == 0 {
		a.Workers = defaultWorkers()
		if a.MaxWorkers > 0 {
			a.Workers = min(a.Workers, a.MaxWorkers)
		}
		a.Workers = max(a.Workers, a.MinWorkers)
	}
	if a.MinWorkers == 0 {
		a.MinWorkers = a.Workers
	}
	if a.MaxWorkers == 0 {
		a.MaxWorkers = a.Workers
	}
	if a.Timeout == 0 {
		a.Timeout = defaultAppTimeout
	}
	if a.GracefulTimeout == 0 {
		a.GracefulTimeout = defaultGracefulTimeout
	}
	if !a.preloadSet {
		a.Preload = true
	}
	if a.Queue == 0 {
		a.Queue = defaultQueue
	}
	if a.QueueTimeout == 0 {
		a.QueueTimeout = defaultQueueTimeout
	}
}

// applySiteDefaults gives the site the global body limit and access log
// when it has none (Set stays false so callers can still tell), and fills
// its route.
func applySiteDefaults(s *Site, cfg *Config) {
	if s.MaxBodyBytes < 0 {
		s.MaxBodyBytes = cfg.Limits.MaxBodyBytes
	}
	if !s.AccessLog.Set {
		s.AccessLog = cfg.AccessLog
		s.AccessLog.Set = false
	}
	if s.TrustedProxies == nil {
		s.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	}
	if !s.httpRedirectSet {
		s.HTTPRedirect = true
	}
	applyACMEDefaults(s, cfg)
	r := &s.Route
	if r.Index == nil {
		r.Index = defaultIndex()
	}
	if !r.PrecompressedSet {
		r.Precompressed, r.PrecompressedSet = defaultPrecompressed(), true
	}
	r.Autoindex = orFalse(r.Autoindex)
	r.FollowSymlinks = orFalse(r.FollowSymlinks)
	r.HiddenFiles = orFalse(r.HiddenFiles)
	if r.proxyOpts.buffering == nil {
		on := defaultProxyBuffering
		r.proxyOpts.buffering = &on
	}
	if !hasHandler(r) && r.Root != "" {
		r.Static = true // a root alone means "serve files"
	}
}

// applyLocationDefaults fills a location's unset fields from its
// (already defaulted) site. The handler (static, try_files, return, app,
// proxy, cgi) is inherited only as a whole and only when the location
// names no handler and no directory of its own: a location that says
// `root` or `alias` means "serve files from here", and a named location
// never inherits one, so `try_files $uri @app` cannot loop into @app.
// proxy_set_header and proxy_buffering are inherited like expires, field
// by field, whichever proxy the location ends up with: a location's own
// proxy_set_header lines replace the site's whole set, as error_page does.
// cgi_timeout and cgi_env are inherited the same way, and so are
// compress, compress_min_length, compress_types and compress_level (per
// algorithm), whatever the handler.
func applyLocationDefaults(l *Location, s *Site) {
	if l.MaxBodyBytes < 0 {
		l.MaxBodyBytes = s.MaxBodyBytes
	}
	r, sr := &l.Route, &s.Route
	ownDir := r.Root != "" || r.Alias != ""
	if r.Root == "" && r.Alias == "" {
		r.Root = sr.Root
	}
	if r.Index == nil {
		r.Index = slices.Clone(sr.Index)
	}
	if r.Expires == nil && sr.Expires != nil {
		d := *sr.Expires
		r.Expires = &d
	}
	r.Autoindex = inheritBool(r.Autoindex, sr.Autoindex)
	r.FollowSymlinks = inheritBool(r.FollowSymlinks, sr.FollowSymlinks)
	r.HiddenFiles = inheritBool(r.HiddenFiles, sr.HiddenFiles)
	if !r.PrecompressedSet {
		r.Precompressed, r.PrecompressedSet = slices.Clone(sr.Precompressed), true
	}
	if r.ErrorPages == nil && sr.ErrorPages != nil {
		r.ErrorPages = maps.Clone(sr.ErrorPages)
	}
	if r.AddHeaders == nil {
		r.AddHeaders = slices.Clone(sr.AddHeaders)
	}
	if r.Access == nil {
		r.Access = slices.Clone(sr.Access)
	}
	if r.AuthRealm == nil {
		r.AuthRealm = sr.AuthRealm
	}
	if r.AuthUsers == nil {
		r.AuthUsers = sr.AuthUsers
	}
	if r.proxyOpts.headers == nil {
		r.proxyOpts.headers = slices.Clone(sr.proxyOpts.headers)
	}
	r.proxyOpts.buffering = inheritBool(r.proxyOpts.buffering, sr.proxyOpts.buffering)
	inheritCGIOpts(&r.cgiOpts, &sr.cgiOpts)
	inheritCompressOpts(&r.compressOpts, &sr.compressOpts)
	inheritCacheOpts(&r.cacheOpts, &sr.cacheOpts)
	switch {
	case hasHandler(r):
	case ownDir || l.Kind == Named:
		r.Static = r.Root != "" || r.Alias != ""
	default:
		r.Static = sr.Static
		r.TryFiles = slices.Clone(sr.TryFiles)
		r.TryFilesPos = sr.TryFilesPos
		if sr.Return != nil {
			ret := *sr.Return
			r.Return = &ret
		}
		r.App = sr.App
		if sr.Proxy != nil {
			p := *sr.Proxy // the upstream itself stays shared
			r.Proxy = &p
		}
		if sr.CGI != nil {
			c := *sr.CGI // finishCGI fills the location's own settings
			r.CGI = &c
		}
	}
}

// hasHandler reports whether a block chose how to answer.
func hasHandler(r *Route) bool {
	return r.Static || len(r.TryFiles) > 0 || r.Return != nil || r.App != "" ||
		r.Proxy != nil || r.UpstreamStatus || r.CGI != nil || r.CachePurge
}

// finishProxy completes a route's proxy once its block is defaulted:
// `proxy NAME;` gets its upstream block, an inline upstream its defaults,
// and the proxy the block's effective proxy_set_header and proxy_buffering.
func finishProxy(r *Route, upstreams map[string]*Upstream) {
	p := r.Proxy
	if p == nil {
		return
	}
	if p.name != "" {
		p.Upstream = upstreams[p.name]
	} else {
		applyUpstreamDefaults(p.Upstream)
	}
	p.SetHeaders = slices.Clone(r.proxyOpts.headers)
	p.Buffering = *r.proxyOpts.buffering
}

// applyUpstreamDefaults fills an upstream's unset fields, inline ones
// included. Running it twice changes nothing, which matters because one
// inline upstream is reached from a site and every location inheriting
// its proxy.
func applyUpstreamDefaults(u *Upstream) {
	u.Balance = cmp.Or(u.Balance, defaultBalance)
	if !u.maxFailsSet {
		u.MaxFails = defaultMaxFails
	}
	u.FailTimeout = cmp.Or(u.FailTimeout, defaultFailTimeout)
	if h := u.Health; h != nil {
		h.Interval = cmp.Or(h.Interval, defaultHealthInterval)
		h.Timeout = cmp.Or(h.Timeout, defaultHealthTimeout)
		h.Status = cmp.Or(h.Status, defaultHealthStatus)
		h.Passes = cmp.Or(h.Passes, defaultHealthPasses)
		h.Fails = cmp.Or(h.Fails, defaultHealthFails)
	}
	u.ConnectTimeout = cmp.Or(u.ConnectTimeout, defaultConnectTimeout)
	u.FirstByteTimeout = cmp.Or(u.FirstByteTimeout, defaultFirstByteTimeout)
	u.ReadTimeout = cmp.Or(u.ReadTimeout, defaultReadTimeout)
	if !u.tlsVerifySet {
		u.TLSVerify = true
	}
	if !u.keepaliveSet {
		u.Keepalive = defaultKeepalive
	}
}

func orFalse(b *bool) *bool {
	if b != nil {
		return b
	}
	f := false
	return &f
}

func inheritBool(own, parent *bool) *bool {
	if own != nil {
		return own
	}
	v := *parent
	return &v
}
