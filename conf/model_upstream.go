package conf

import "time"

// Upstream is a group of backend servers that `proxy` sends requests to:
// either a named `upstream NAME { ... }` block (listed in Config.Upstreams)
// or the anonymous group behind an inline `proxy URL...;`.
//
// One *Upstream may be reached from several routes: every `proxy NAME;` of
// the same NAME, and a site's proxy inherited by its locations, point at
// the same value. Whoever runs the groups should start one per distinct
// pointer, so health state and connection pools are shared as written.
type Upstream struct {
	// Pos is where `upstream` (or the inline `proxy`) was written.
	Pos Pos
	// Name is the NAME of `upstream NAME { }`; "" for an inline proxy.
	Name string
	// Inline marks the group of a `proxy URL...;` without an upstream block.
	// It has every default below and one server per URL, weight 1.
	Inline bool
	// Servers are the `server URL [weight N] [backup];` lines in config
	// order; at least one, and at least one that is not a backup.
	Servers []UpstreamServer
	// Balance is `balance POLICY;` how a server is picked: "round_robin"
	// (weighted; the default), "least_conn", "random_two" (the less busy of
	// two random servers), "ip_hash" (client address), "header" or "cookie"
	// (hash of the value named by BalanceKey).
	Balance string
	// BalanceKey is the NAME of `balance header NAME;` or `balance cookie
	// NAME;`, else "".
	BalanceKey string
	// MaxFails is `max_fails N;` the failures within FailTimeout that mark
	// a server down (passive health); default 1; 0 turns passive marking off.
	MaxFails int
	// FailTimeout is `fail_timeout DURATION;` both the window failures are
	// counted in and how long a server then stays down; default 10s.
	FailTimeout time.Duration
	// FailStatus is `fail_status CODE...;` response statuses that count as
	// failures for MaxFails; default none (only connection errors and
	// timeouts count).
	FailStatus []int
	// Health configures active checks; nil (the default) means none. It is
	// set by `health_uri PATH;`.
	Health *HealthCheck
	// ConnectTimeout is `connect_timeout DURATION;` for dialling a server;
	// default 5s.
	ConnectTimeout time.Duration
	// FirstByteTimeout is `first_byte_timeout DURATION;` from the request
	// being sent to the response head arriving; default 60s.
	FirstByteTimeout time.Duration
	// ReadTimeout is `read_timeout DURATION;` the longest idle gap between
	// reads of a response body (and on a WebSocket tunnel); default 60s.
	ReadTimeout time.Duration
	// RetryStatus is `retry_status CODE...;` idempotent requests answered
	// with one of these statuses are retried on another server; default none.
	RetryStatus []int
	// TLSVerify is `tls_verify on|off;` whether https servers' certificates
	// are checked; default on. Ignored for other schemes.
	TLSVerify bool
	// TLSCA is `tls_ca FILE;` an extra PEM root CA for https servers,
	// resolved against the config file's directory and checked to be
	// readable and to hold a certificate; default none (system roots).
	TLSCA string
	// Keepalive is `keepalive N;` idle connections kept open per server;
	// default 32; 0 closes each connection after use.
	Keepalive int

	// maxFailsSet, tlsVerifySet and keepaliveSet record that the directive
	// appeared, so an explicit 0/off is not replaced by the default.
	maxFailsSet, tlsVerifySet, keepaliveSet bool
	pos                                     upstreamPos
}

// upstreamPos remembers where upstream directives were written, for
// validation errors found after the block is built. Not part of the model.
type upstreamPos struct {
	name, tlsCA Pos
	// firstBackup is the first "backup" word, where "every server is a
	// backup" points.
	firstBackup Pos
	// servers maps each server URL to where it was first listed.
	servers map[string]Pos
}

// UpstreamServer is one `server URL [weight N] [backup];`, or one URL of an
// inline `proxy URL...;`.
type UpstreamServer struct {
	// Pos is where the URL was written.
	Pos Pos
	// URL is one of http://HOST:PORT, https://HOST:PORT, uwsgi://HOST:PORT,
	// unix:/PATH (HTTP over a unix socket) or uwsgi+unix:/PATH, with no path
	// or query; the scheme is lower-cased, the rest is as written.
	URL string
	// Weight is `weight N` (1 or more): a server with weight 2 gets twice
	// the share of one with weight 1; default 1.
	Weight int
	// Backup servers get requests only while every other server is down.
	Backup bool
}

// HealthCheck is the active health check of an upstream: GET URI on every
// server each Interval.
type HealthCheck struct {
	// URI is `health_uri PATH;` the path (and query) requested; starts with "/".
	URI string
	// Interval is `health_interval DURATION;` between checks; default 5s.
	Interval time.Duration
	// Timeout is `health_timeout DURATION;` for one check; default 2s.
	Timeout time.Duration
	// Status is `health_status CODE;` the status a healthy server answers;
	// default 200.
	Status int
	// Passes is `health_passes N;` consecutive passes that mark a down
	// server up; default 1.
	Passes int
	// Fails is `health_fails N;` consecutive failures that mark an up server
	// down; default 1.
	Fails int
}

// Proxy is the `proxy TARGET...;` handler of a route, with the
// proxy_set_header and proxy_buffering settings in force for that route.
type Proxy struct {
	// Pos is where `proxy` was written (the site's, for an inherited proxy).
	Pos Pos
	// Upstream is the group requests go to: the named upstream block for
	// `proxy NAME;`, else an inline one (Inline set). Never nil after loading.
	Upstream *Upstream
	// SetHeaders are the `proxy_set_header NAME VALUE;` lines of the block,
	// else of its site; nil = none. An empty Value removes the header.
	// Values may use $host, $remote_addr, $scheme, $request_uri, $uri and
	// $args (or its alias $query_string).
	SetHeaders []ProxyHeader
	// Buffering is `proxy_buffering on|off;` of the block, else of its site;
	// default on: the request body is read completely (spooled to disk when
	// large) before it is sent, so a failed attempt can be retried. Off
	// streams it.
	Buffering bool

	// name is the NAME of `proxy NAME;` until it is resolved into Upstream;
	// namePos is where it was written.
	name    string
	namePos Pos
}

// ProxyHeader is one `proxy_set_header NAME VALUE;`.
type ProxyHeader struct {
	Name  string
	Value string
}

// proxyOpts holds a block's own proxy_set_header and proxy_buffering while
// loading. They are kept apart from Route.Proxy because they may appear
// without `proxy` (at site level, as defaults for the locations' proxies)
// and before it; once inheritance is done they are copied into Route.Proxy.
type proxyOpts struct {
	// headers is nil when the block sets none.
	headers []ProxyHeader
	// headerPos maps each lower-cased header name to where it was set.
	headerPos map[string]Pos
	// buffering is nil when the block does not set proxy_buffering.
	buffering *bool
	// timeouts are the block's own connect_timeout, first_byte_timeout
	// and read_timeout lines, for the inline `proxy URL...;` of the same
	// block (finishInlineTimeouts); zero when not written.
	timeouts proxyTimeouts
}

// proxyTimeouts are a site's or location's own timeout lines.
type proxyTimeouts struct {
	connect, firstByte, read time.Duration
	pos                      Pos      // the first line's
	names                    []string // the directives written, in order
}
