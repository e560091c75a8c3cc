package conf

import (
	"net/netip"
	"regexp"
	"time"

	"github.com/tandem-server/tandem/conf/htpasswd"
)

// Pos is where a directive or block starts in a config file. Every error and
// every model node carries one so messages can say FILE:LINE:COL.
type Pos struct {
	File string
	Line int
	Col  int
}

// Config is a whole, validated configuration: the top-level directives of the
// main file and every included file.
type Config struct {
	// Files lists every file that was read, main file first; reload compares them.
	Files []string

	// PIDFile is where `tandem run` writes its pid so `tandem reload` and
	// `tandem stop` can find it. Directive: pid_file PATH; default
	// "/run/tandem.pid" when running as root, else
	// $XDG_RUNTIME_DIR/tandem.pid, else tandem.pid in the working directory
	// (see DefaultPIDFile). Always absolute after loading.
	PIDFile string

	// ErrorLog is where the error log goes. Directive: error_log PATH|stderr
	// [debug|info|warn|error]; default stderr at info.
	ErrorLog LogTarget

	// AccessLog is the global access log, used by sites without their own.
	// Directive: access_log PATH|stderr|off [combined|json]; default off.
	AccessLog AccessLog

	// Limits apply to every listener (timeouts, header size, connections) and
	// act as defaults for sites (client_max_body_size).
	Limits Limits

	// ShutdownTimeout is how long SIGTERM waits for in-flight requests
	// before closing connections. Directive: shutdown_timeout DURATION;
	// default 30s.
	ShutdownTimeout time.Duration

	Sites []*Site

	// Apps are the `app NAME { }` blocks, in config order.
	Apps []*App

	// Upstreams are the named `upstream NAME { }` blocks, in config order.
	// Inline upstreams (`proxy URL...;`) are reachable only through
	// Route.Proxy.
	Upstreams []*Upstream

	// TLSStorage is `tls_storage DIR;` the directory where tandem keeps
	// the internal CA (`tls internal`) and the certificates it issues,
	// created with mode 0700 when missing. Default: "tls" under the state
	// directory (see DefaultStateDir). Always absolute after loading.
	TLSStorage string

	// ACME is the top-level acme_* settings, the defaults of every `tls
	// auto` and `tls on_demand` site (see Site's ACME override).
	ACME ACME
	// TLSRenewCheck is `tls_renew_check DURATION;` how often ACME
	// certificates are checked for renewal and their OCSP staples
	// refreshed; default 10m. Fixed at start: a reload does not change it.
	TLSRenewCheck time.Duration

	// TrustedProxies is `trusted_proxies CIDR...;` (repeatable) at top
	// level: the peers whose X-Forwarded-For and related forwarding
	// headers a proxy handler believes. `private` stands for loopback, RFC 1918 and ULA
	// ranges; a bare address is a single-host prefix. Default none. Sites
	// without their own list get a copy of this one.
	TrustedProxies []netip.Prefix

	// Cache is the top-level `cache { }` block (see CacheStore); nil
	// when absent.
	Cache *CacheStore
}

// LogTarget is a destination plus a level for the error log.
type LogTarget struct {
	Pos Pos
	// Path is a file path, or "stderr".
	Path  string
	Level string // debug, info, warn, error
}

// AccessLog configures an access log destination and format.
type AccessLog struct {
	Pos Pos
	// Off disables the access log (access_log off;).
	Off bool
	// Path is a file path, or "stderr".
	Path string
	// Format is "combined" (nginx's) or "json". Default combined.
	Format string
	// Set reports whether the directive appeared (so a site's absence can
	// fall back to the global one).
	Set bool
}

// Limits are the connection and request limits. Zero means "use default".
type Limits struct {
	// HeaderTimeout bounds reading the request line and headers (slowloris).
	// Directive: header_timeout DURATION; default 10s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds reading the whole request body.
	// Directive: body_timeout DURATION; default 60s.
	BodyTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. Directive: idle_timeout DURATION; default 75s.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing a response. Directive: write_timeout
	// DURATION; default 0 (off: large downloads to slow clients are legal),
	// applied per write as an idle send timeout of 60s instead.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds the request line plus headers.
	// Directive: max_header_size SIZE; default 1m.
	MaxHeaderBytes int64
	// MaxBodyBytes is client_max_body_size: larger bodies get 413.
	// Directive: client_max_body_size SIZE; default 1m; 0 means unlimited
	// when written explicitly as "client_max_body_size 0;".
	MaxBodyBytes int64
	// MaxConnections caps concurrent connections per listener; 0 = unlimited.
	// Directive: max_connections N; default 0.
	MaxConnections int
}

// Site is one virtual host: `site NAME... { ... }`.
type Site struct {
	Pos Pos
	// Names are the host names this site answers: exact ("example.com"),
	// wildcard ("*.example.com"), or "_" (matches nothing by name; use with
	// `default`). Port suffixes are not part of names.
	Names []string
	// Listen lists the addresses this site is served on.
	Listen []Listen
	// Route holds site-wide handling; locations inherit unset fields.
	Route Route
	// Locations in config order. After loading, every location has its
	// inherited fields filled from Route.
	Locations []*Location
	// AccessLog overrides the global access log when Set.
	AccessLog AccessLog
	// MaxBodyBytes: client_max_body_size at site level; -1 when unset
	// while parsing; after loading, the effective limit (site, else global).
	MaxBodyBytes int64
	// TrustedProxies is the site's `trusted_proxies CIDR...;`, which
	// replaces the global list; after loading, the effective list (site,
	// else global; nil when neither is set).
	TrustedProxies []netip.Prefix

	// TLS is the site's `tls` directive (with its tls_client_ca); nil for
	// a plain HTTP site. A TLS site without listen gets ":443" and ":80".
	TLS *SiteTLS
	// HSTS is `hsts DURATION [include_subdomains] [preload];` sent on the
	// site's TLS responses; nil = no Strict-Transport-Security header.
	HSTS *HSTS
	// HTTPRedirect is `http_redirect on|off;` whether the plain HTTP
	// addresses of a TLS site (port 80, or marked `http` in listen)
	// answer with a 308 redirect to HTTPS (on, the default) or serve the
	// site itself in plain HTTP (off). Meaningless without TLS.
	HTTPRedirect bool
	// HTTP3 is `http3 on|off;` (default off): the site's TLS addresses
	// also listen on UDP for HTTP/3 (QUIC), and its HTTPS responses
	// advertise it with Alt-Svc. Needs tls. See build_http3.go.
	HTTP3    bool
	http3Pos Pos

	// acme is the site's own acme_* directives; applySiteDefaults merges
	// them over the top-level ones into TLS.ACME.
	acme    ACME
	acmeSet Pos // the first acme_* directive, for "needs tls auto"

	// namePos holds the position of each entry of Names.
	namePos []Pos
	// listenWritten is set when a listen directive appeared, valid or not.
	listenWritten bool
	// tlsWritten is set when tls appeared, valid or not, so the
	// directives that need it do not add a second error.
	tlsWritten      bool
	httpRedirectSet bool
	httpRedirectPos Pos
	// clientCA is tls_client_ca, kept here until the block is read
	// because it may come before tls.
	clientCA    string
	clientCAPos Pos
}

// SiteTLS is how a site serves TLS: `tls CERT_FILE KEY_FILE;` (files
// given), `tls internal;` (a certificate from tandem's own CA), `tls auto
// [EMAIL];` (certificates for the site's names from an ACME CA) or `tls
// on_demand ask URL;` (from an ACME CA at the first handshake for a name
// the ask endpoint approves).
type SiteTLS struct {
	Pos Pos
	// Auto is `tls auto [EMAIL];`: certificates for every name of the
	// site are obtained and renewed through ACME (see ACME).
	Auto bool
	// OnDemandAsk is the URL of `tls on_demand ask URL;`: before a
	// certificate is obtained for a name at its first handshake, tandem
	// GETs URL?domain=NAME and goes on only on a 200.
	OnDemandAsk string
	// ACME holds the effective ACME settings of an Auto or on-demand site
	// after loading (the site's acme_* directives, else the top-level
	// ones, else the defaults); nil for the other kinds.
	ACME *ACME
	// Internal is `tls internal;`: tandem issues the site a certificate
	// for all its names from the local CA kept in Config.TLSStorage.
	Internal bool
	// CertFile and KeyFile are `tls CERT_FILE KEY_FILE;` PEM files (the
	// certificate file may hold the chain after the leaf). They are read
	// at start and at every reload, so renewed files take effect on
	// SIGHUP.
	CertFile string
	KeyFile  string
	// ClientCA is `tls_client_ca FILE;` a PEM bundle of CAs: clients must
	// present a certificate that chains to one of them (mutual TLS). ""
	// = no client certificates asked. All TLS sites on an address must
	// agree on it.
	ClientCA string

	certPos, keyPos Pos
}

// ACME is how `tls auto` and `tls on_demand` sites get certificates.
// Each field can be set at top level and overridden in a site.
type ACME struct {
	// CA is `acme_ca URL|letsencrypt|letsencrypt_staging;` the ACME
	// directory URL; default Let's Encrypt's production directory.
	CA string
	// CARoot is `acme_ca_root FILE;` a PEM bundle trusted, besides the
	// system roots, for the CA's HTTPS API (a private CA); "" = none.
	CARoot string
	// Email is `acme_email EMAIL;` or the argument of `tls auto EMAIL;`:
	// the account contact the CA writes to about expiring certificates;
	// "" registers an account without one.
	Email string
	// HTTP01 and TLSALPN01 are the challenge types allowed by
	// `acme_challenges http-01 tls-alpn-01;` (default both).
	HTTP01, TLSALPN01 bool

	challengesSet  bool
	caPos, rootPos Pos
}

// Well-known ACME directories, also accepted by name in acme_ca.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// HSTS is `hsts DURATION [include_subdomains] [preload];`.
type HSTS struct {
	Pos Pos
	// MaxAge is how long browsers must use HTTPS only; 0 tells them to
	// forget an earlier policy.
	MaxAge            time.Duration
	IncludeSubdomains bool
	// Preload asks for inclusion in browsers' preload lists; it needs
	// IncludeSubdomains and a MaxAge of at least a year.
	Preload bool
}

// Listen is one `listen ADDR [default];` address.
type Listen struct {
	Pos Pos
	// Addr is host:port as given to net.Listen ("127.0.0.1:8080", ":80",
	// "[::1]:8080"). A bare port "8080" is normalised to ":8080".
	Addr string
	// Default marks this site as the listener's default (served for unknown
	// Host headers). Without it, the first site listed on the address is.
	Default bool
	// HTTP is the `http` flag (`listen 8080 http;`): in a site with tls
	// this address serves plain HTTP (the redirect to HTTPS, or the site
	// itself with http_redirect off) instead of TLS. Port 80 is plain
	// without it. Ignored in a site without tls.
	HTTP bool
	// H2C is the `h2c` flag (`listen 8081 h2c;`): this plain HTTP
	// address also accepts cleartext HTTP/2 with prior knowledge (RFC
	// 9113 §3.3). An address is h2c when any site lists it so. Not
	// allowed on a TLS address, which negotiates HTTP/2 by ALPN.
	H2C    bool
	h2cPos Pos
	// TLS is set when the site serves TLS on this address: the site has
	// tls, and the address is neither on port 80 nor marked http.
	TLS bool
}

// LocationKind says how a location matches.
type LocationKind int

const (
	// Prefix matches any path that starts with Path; the longest wins.
	Prefix LocationKind = iota
	// Exact (`location = /path`) matches only Path and wins over prefixes.
	Exact
	// Named (`location @name`) is reachable only from try_files and
	// error_page, never by a request path.
	Named
	// PrefixNoRegex (`location ^~ /path`) is a prefix that, when it is the
	// longest prefix of a path, keeps the regex locations from being tried.
	PrefixNoRegex
	// Regex (`location ~ RE`, or `location ~* RE` ignoring case) matches
	// the paths Regexp finds a match in. Regex locations are tried in
	// config order after the exact and prefix ones; the first match wins
	// over the longest prefix, as in nginx.
	Regex
)

// Location is `location [=|^~] PATH { ... }`, `location ~|~* RE { ... }`
// or `location @NAME { ... }`.
type Location struct {
	Pos  Pos
	Kind LocationKind
	// Path is the prefix or exact path, the name including '@', or the
	// regular expression as written.
	Path string
	// Regexp is the compiled Path of a Regex location (case-insensitive
	// for `~*`); nil for the other kinds.
	Regexp *regexp.Regexp
	// IgnoreCase marks `~*`.
	IgnoreCase bool
	Route      Route
	// NoAccessLog is `access_log off;` in the location: requests whose
	// path picks it are not logged (the site's log otherwise).
	NoAccessLog bool
	// MaxBodyBytes: client_max_body_size in this location; -1 when unset
	// while parsing (inherit from the site, then the global limit); after
	// loading, the effective limit.
	MaxBodyBytes int64
}

// AuthUsers is a parsed `auth_basic_user_file`.
type AuthUsers struct {
	Path  string
	Users *htpasswd.File
}

// AccessRule is one `allow ADDR;` or `deny ADDR;` line. ADDR is an
// address, a CIDR, private (loopback and the private ranges) or all.
type AccessRule struct {
	Allow    bool
	Prefixes []netip.Prefix // nil for all
}

// AddHeader is one `add_header NAME VALUE [always];` line.
type AddHeader struct {
	Name   string // canonical form
	Value  string
	Always bool
}

// Route is the handling that may be set on a site and overridden per
// location. Pointer and nil-slice fields are "unset" and inherit.
type Route struct {
	// Root: `root DIR;` files are looked up at DIR + request path.
	Root string
	// Alias: `alias DIR;` (locations only) replaces the location prefix with DIR.
	Alias string
	// Index: `index FILE...;` default index.html.
	Index []string
	// TryFiles: `try_files ARG... FALLBACK;` args may use $uri; the last may
	// be @name, =CODE, or a URI.
	TryFiles    []string
	TryFilesPos Pos
	// Static: `static;` serves files from root/alias (the default handler
	// when no other handler is set). After loading it is also true for a
	// block with a root/alias and no handler of its own; with try_files set
	// it may be false, since try_files is itself file serving.
	Static bool
	// Return: `return CODE [URL|TEXT];`
	Return *Return
	// App: `app NAME;` sends requests to the app pool NAME.
	App string
	// Expires: `expires DURATION|off|max;` sets Cache-Control max-age and
	// Expires. nil = unset; a negative value means off.
	Expires *time.Duration
	// Autoindex: `autoindex on|off;` directory listings; default off.
	Autoindex *bool
	// FollowSymlinks: `follow_symlinks on|off;` default off: symlinks
	// leading outside the root are refused.
	FollowSymlinks *bool
	// HiddenFiles: `hidden_files deny|allow;` whether dot-files (.git, .env)
	// may be served; default deny (404). true means allow.
	HiddenFiles *bool
	// Precompressed: `precompressed zstd br gzip;` or `precompressed off;`
	// sidecar encodings to look for, in preference order; default
	// [zstd br gzip].
	Precompressed    []string
	PrecompressedSet bool
	// ErrorPages maps a status to a URI or @name: `error_page CODE... URI;`
	ErrorPages map[int]string
	// AddHeaders are the `add_header NAME VALUE [always];` lines: added
	// to responses with a success or redirect status (every status with
	// always). nil = unset; a block's own lines replace its site's set,
	// as in nginx.
	AddHeaders []AddHeader
	// Access are the `allow ADDR;` and `deny ADDR;` lines in config
	// order: the first that matches the client decides; none matching
	// allows. nil = unset; a block's own lines replace its site's set.
	Access []AccessRule
	// AuthRealm is `auth_basic REALM|off;`: nil unset (inherited), ""
	// for off. With AuthUsers set it asks for a user and password.
	AuthRealm *string
	// AuthUsers is `auth_basic_user_file FILE;` parsed; nil unset.
	AuthUsers *AuthUsers
	// Proxy: `proxy TARGET...;` sends requests to an upstream; nil = not a
	// proxy. After loading its Upstream is resolved and its SetHeaders and
	// Buffering hold the block's (else the site's) proxy_set_header and
	// proxy_buffering.
	Proxy *Proxy
	// UpstreamStatus: `upstream_status;` (locations only) answers with the
	// JSON state of every upstream.
	UpstreamStatus bool
	// CGI: `cgi;` runs the script the request path names under the root
	// or alias (RFC 3875); nil = not CGI. After loading its Timeout and
	// Env hold the block's (else the site's) cgi_timeout and cgi_env.
	CGI *CGI
	// Compress: `compress ALG...;` compresses responses on the fly
	// (docs/compression.md); nil = off, the default. After loading it
	// holds the block's (else the site's) compress_level,
	// compress_min_length and compress_types, each inherited on its own.
	Compress *Compress
	// Cache: `cache DURATION|on|off;` or `cache { ... }` keeps this
	// block's responses in the process's response cache (docs/cache.md);
	// nil = off, the default. After loading it holds the block's (else
	// the site's) cache line or block and cache_key, each inherited on
	// its own.
	Cache *Cache
	// CachePurge: `cache_purge;` (locations only) serves the cache's
	// purge endpoint (POST ?url=, ?tag=, ?all=1). It never caches.
	CachePurge bool

	pos          routePos
	proxyOpts    proxyOpts
	cgiOpts      cgiOpts
	compressOpts compressOpts
	cacheOpts    cacheOpts
}

// Compress is a route's on-the-fly response compression: `compress
// ALG...;` with its settings resolved. The edge turns it into an
// edge/compress Compressor wrapped around the location's handler.
type Compress struct {
	// Pos is where `compress` was written (the site's, for an inherited
	// one).
	Pos Pos
	// Algorithms are the codings offered, in the server's preference
	// order, which only breaks ties between codings the client weights
	// equally: a non-empty subset of "zstd", "br" and "gzip".
	Algorithms []string
	// Levels is `compress_level ALG N;` for the offered algorithms that
	// have one (the block's line, else the site's, per algorithm); an
	// algorithm without an entry gets its default: gzip 5 (range 1-9),
	// zstd 3 (1-22), br 4 (0-11). nil when none is set.
	Levels map[string]int
	// MinLength is `compress_min_length SIZE;` in bytes: the smallest body
	// compressed; 0 compresses every non-empty body. Default 1k, at most
	// 1m (bodies of unknown length are held back up to it).
	MinLength int64
	// Types is `compress_types TYPE...;` the media types compressed,
	// lower-cased: exact ("application/json"), a whole top-level type
	// ("text/*"), a structured-syntax suffix ("application/*+json"),
	// "*/*", or "default" for the built-in list of text formats. Default
	// ["default"].
	Types []string
}

// CGI is the `cgi;` handler of a route: a request runs the first regular
// file along its path under the root or alias as a CGI/1.1 script, the
// rest of the path being PATH_INFO. Only executable files run.
type CGI struct {
	// Pos is where `cgi` was written (the site's, for an inherited cgi).
	Pos Pos
	// Timeout is `cgi_timeout DURATION;` of the block, else of its site:
	// how long a script may take to print its whole response head. Past
	// it the script (its whole process group) is killed and the client
	// gets 504. The body that follows has no limit of its own. Default 60s.
	Timeout time.Duration
	// Env is the `cgi_env KEY VALUE;` lines of the block, else of its
	// site; nil = none. They are added to the script's environment and
	// win over the variables tandem sets (PATH included).
	Env []EnvVar
}

// Return is `return CODE [URL|TEXT];` or `redirect URL [CODE];`.
type Return struct {
	Pos  Pos
	Code int
	// Text is the body for non-redirect codes, or the Location for 3xx.
	// It may contain $scheme, $host, $request_uri, $uri, $args.
	Text string
}

// routePos remembers where route directives were written, for validation
// errors that are found after the block is built. Not part of the model.
type routePos struct {
	root, alias, static Pos
	authRealm           Pos
	// authUsersWritten: auth_basic_user_file appeared, valid or not, so
	// a bad file is not also reported as a missing one.
	authUsersWritten bool
	// dirWritten is set when root or alias appears in the block, even if
	// invalid, so a bad root is not also reported as a missing one.
	dirWritten bool
	// tryFallback is the position of try_files' last argument.
	tryFallback Pos
	// errorPages maps a status to where its error_page code and target
	// were written.
	errorPages map[int]errorPagePos
	// app is where the NAME of `app NAME;` was written.
	app Pos
}

type errorPagePos struct{ code, target Pos }

// App is `app NAME { ... }`: a supervised pool of worker processes that
// locations reach with `app NAME;`. Exactly one of WSGI, ASGI or Command
// is set.
type App struct {
	Pos  Pos
	Name string
	// WSGI is `wsgi MODULE:CALLABLE;` (e.g. "blog.wsgi:application").
	WSGI string
	// ASGI is `asgi MODULE:CALLABLE;` (reserved for a later issue).
	ASGI string
	// Command is `command ARG...;`: a program run as N workers that serve
	// HTTP on $TANDEM_SOCKET or $PORT (docs/command-workers.md).
	Command []string
	// Python is `python PATH;` default /usr/bin/python3 when it exists,
	// else "python3" from PATH.
	Python string
	// Chdir is `chdir DIR;` the app's working directory, put first on
	// sys.path. Default: the config file's directory.
	Chdir string
	// Env is `env KEY VALUE;` (repeatable), added to the worker environment.
	Env []EnvVar
	// Workers is `workers N;` default 2 × CPU cores + 1.
	Workers int
	// MinWorkers/MaxWorkers are `min_workers N;`/`max_workers N;` bounds for
	// scaling; default both equal Workers (no automatic scaling).
	MinWorkers int
	MaxWorkers int
	// Timeout is `timeout DURATION;` per request; default 30s.
	Timeout time.Duration
	// GracefulTimeout is `graceful_timeout DURATION;` how long a stopping
	// worker may finish its request; default 30s.
	GracefulTimeout time.Duration
	// MaxRequests is `max_requests N [jitter N];` 0 = never recycle.
	MaxRequests       int
	MaxRequestsJitter int
	// MaxLifetime is `max_lifetime DURATION [jitter DURATION];` 0 = never.
	MaxLifetime       time.Duration
	MaxLifetimeJitter time.Duration
	// MaxMemory is `max_memory SIZE;` RSS ceiling per worker; 0 = none.
	MaxMemory int64
	// Preload is `preload on|off;` default on (import once in a zygote, fork workers).
	Preload bool
	// NoPipeline is `pipeline off;`. By default (on), under load, a small
	// request may be queued to a busy worker, behind the request it serves
	// (docs/appserver.md, "Pipelining"); off, only ever to an idle worker.
	// Negated so that an App built in code pipelines, like a configured one.
	NoPipeline bool
	// NormalScheduling is `cpu_scheduling normal;`. By default (batch),
	// Python workers run under Linux's SCHED_BATCH policy: a worker woken
	// by a request does not preempt the thread running, so tandem's
	// front end, which feeds every worker, is not pushed off its core by
	// the workers it wakes (docs/appserver.md, "CPU scheduling"). Negated
	// so that an App built in code gets the default, like a configured one.
	NormalScheduling bool
	// Queue is `queue N [timeout DURATION];` requests waiting for a free
	// worker; default 1024, timeout default 30s. Past either: 503.
	Queue        int
	QueueTimeout time.Duration
	// User/Group are `user NAME;`/`group NAME;` to drop privileges (root
	// only). Load does not check privileges, since `tandem check` often runs
	// as another user than the server; the server calls
	// Config.CheckPrivileges before it starts workers.
	User  string
	Group string

	// dir is the directory of the file the block is written in, Chdir's
	// default.
	dir string
	// preloadSet is set when preload appeared, so "off" is not defaulted.
	preloadSet bool
	pos        appPos
}

// appPos remembers where app directives were written, for validation
// errors found after the block is built. Not part of the model.
type appPos struct {
	name, python, chdir, user, group Pos
	command                          Pos // the program, command's first argument
	workers, minWorkers, maxWorkers  Pos
	// env maps each env KEY to where it was written.
	env map[string]Pos
}

// EnvVar is one `env KEY VALUE;`.
type EnvVar struct {
	Key   string
	Value string
}
