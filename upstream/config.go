package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Server is one backend of a group.
type Server struct {
	// URL is where the server listens: http://HOST:PORT, https://HOST:PORT,
	// unix:/PATH (HTTP/1.1 over a unix socket), uwsgi://HOST:PORT or
	// uwsgi+unix:/PATH. No path, query or user info: the request URI is
	// passed through unchanged.
	URL string `json:"url"`
	// Weight is the server's share under round_robin, least_conn,
	// random_two and the hash policies. 0 means 1.
	Weight int `json:"weight"`
	// Backup servers get requests only while no primary server is up.
	Backup bool `json:"backup"`
}

// Config describes a group of servers and how requests are spread over
// them. Zero durations take the defaults named on each field; the conf
// package fills every field, so the zero rules matter only to other
// callers.
type Config struct {
	// Name identifies the group in logs and Status; "" for an inline proxy.
	Name    string   `json:"name"`
	Servers []Server `json:"servers"`
	// Balance is "round_robin" (default, smooth weighted), "least_conn",
	// "random_two", "ip_hash", "header" or "cookie".
	Balance string `json:"balance"`
	// BalanceKey is the header or cookie name hashed by "header"/"cookie".
	BalanceKey string `json:"balance_key,omitempty"`
	// MaxFails failures within FailTimeout mark a server down for
	// FailTimeout (passive health). 0 turns passive marking off.
	MaxFails int `json:"max_fails"`
	// FailTimeout is both the failure-counting window and how long a
	// server stays down. Default 10s.
	FailTimeout time.Duration `json:"fail_timeout"`
	// FailStatus lists response codes counted as failures (passive).
	FailStatus []int `json:"fail_status,omitempty"`
	// Health turns on active checks; nil means none.
	Health *HealthConfig `json:"health,omitempty"`
	// ConnectTimeout bounds the TCP/unix connect (and TLS handshake).
	// Default 5s.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// FirstByteTimeout bounds the wait from request sent to response
	// head. Default 60s.
	FirstByteTimeout time.Duration `json:"first_byte_timeout"`
	// ReadTimeout is the longest idle wait between reads of a response
	// body, and the idle limit of an upgraded (WebSocket) connection in
	// both directions. Default 60s.
	ReadTimeout time.Duration `json:"read_timeout"`
	// RetryStatus lists response codes on which an idempotent request is
	// retried on another server.
	RetryStatus []int `json:"retry_status,omitempty"`
	// TLSVerify checks https servers' certificates. Note the zero value
	// is false (no verification); conf defaults it to true.
	TLSVerify bool `json:"tls_verify"`
	// TLSCA is a PEM file of extra roots trusted for https servers.
	TLSCA string `json:"tls_ca,omitempty"`
	// Keepalive is how many idle connections are kept per server; 0
	// disables keep-alive (a new connection per request).
	Keepalive int `json:"keepalive"`
}

// HealthConfig describes active health checks: GET URI on every server
// every Interval.
type HealthConfig struct {
	// URI is the path (and query) requested, starting with "/".
	URI string `json:"uri"`
	// Interval between check rounds. Default 5s.
	Interval time.Duration `json:"interval"`
	// Timeout bounds one check, connect to last body byte. Default 2s.
	Timeout time.Duration `json:"timeout"`
	// Status is the expected response code. Default 200.
	Status int `json:"status"`
	// Passes consecutive passes mark a down server up. Default 1.
	Passes int `json:"passes"`
	// Fails consecutive failures mark an up server down. Default 1.
	Fails int `json:"fails"`
}

// Balance policy names, as written in the config.
const (
	BalanceRoundRobin = "round_robin"
	BalanceLeastConn  = "least_conn"
	BalanceRandomTwo  = "random_two"
	BalanceIPHash     = "ip_hash"
	BalanceHeader     = "header"
	BalanceCookie     = "cookie"
)

// Defaults for zero-valued Config and HealthConfig fields.
const (
	DefaultFailTimeout      = 10 * time.Second
	DefaultConnectTimeout   = 5 * time.Second
	DefaultFirstByteTimeout = 60 * time.Second
	DefaultReadTimeout      = 60 * time.Second
	DefaultHealthInterval   = 5 * time.Second
	DefaultHealthTimeout    = 2 * time.Second
)

// withDefaults returns cfg with zero values replaced by defaults. Slices
// are copied so the group never shares memory with its caller.
func withDefaults(cfg Config) Config {
	if cfg.Balance == "" {
		cfg.Balance = BalanceRoundRobin
	}
	if cfg.FailTimeout <= 0 {
		cfg.FailTimeout = DefaultFailTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.FirstByteTimeout <= 0 {
		cfg.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	cfg.Servers = slices.Clone(cfg.Servers)
	for i := range cfg.Servers {
		if cfg.Servers[i].Weight <= 0 {
			cfg.Servers[i].Weight = 1
		}
	}
	cfg.FailStatus = slices.Clone(cfg.FailStatus)
	cfg.RetryStatus = slices.Clone(cfg.RetryStatus)
	if cfg.Health != nil {
		h := *cfg.Health
		if h.Interval <= 0 {
			h.Interval = DefaultHealthInterval
		}
		if h.Timeout <= 0 {
			h.Timeout = DefaultHealthTimeout
		}
		if h.Status == 0 {
			h.Status = 200
		}
		if h.Passes <= 0 {
			h.Passes = 1
		}
		if h.Fails <= 0 {
			h.Fails = 1
		}
		cfg.Health = &h
	}
	return cfg
}

// validate checks a defaulted config; server URLs are checked by
// parseServerURL.
func validate(cfg Config) error {
	if len(cfg.Servers) == 0 {
		return errors.New("no servers")
	}
	switch cfg.Balance {
	case BalanceRoundRobin, BalanceLeastConn, BalanceRandomTwo, BalanceIPHash:
	case BalanceHeader, BalanceCookie:
		if cfg.BalanceKey == "" {
			return fmt.Errorf("balance %s needs a name", cfg.Balance)
		}
	default:
		return fmt.Errorf("unknown balance %q", cfg.Balance)
	}
	if cfg.MaxFails < 0 {
		return fmt.Errorf("max_fails %d is negative", cfg.MaxFails)
	}
	for _, codes := range [][]int{cfg.FailStatus, cfg.RetryStatus} {
		for _, c := range codes {
			if c < 100 || c > 599 {
				return fmt.Errorf("status %d out of range 100-599", c)
			}
		}
	}
	if h := cfg.Health; h != nil {
		if !strings.HasPrefix(h.URI, "/") {
			return fmt.Errorf("health uri %q must start with /", h.URI)
		}
		if _, err := url.ParseRequestURI(h.URI); err != nil {
			return fmt.Errorf("health uri %q: %w", h.URI, err)
		}
		if h.Status < 100 || h.Status > 599 {
			return fmt.Errorf("health status %d out of range 100-599", h.Status)
		}
	}
	seen := make(map[string]bool, len(cfg.Servers))
	for _, s := range cfg.Servers {
		if seen[s.URL] {
			return fmt.Errorf("server %q listed twice (use weight instead)", s.URL)
		}
		seen[s.URL] = true
	}
	return nil
}

// endpoint is a parsed server URL.
type endpoint struct {
	scheme  string // as written: http, https, unix, uwsgi, uwsgi+unix
	network string // tcp or unix
	addr    string // host:port or socket path
}

// parseServerURL accepts the five server URL forms. Ports default to 80
// and 443 for http and https; uwsgi needs one.
func parseServerURL(raw string) (endpoint, error) {
	if i := strings.Index(raw, ":"); i <= 0 || !knownScheme(raw[:i]) {
		if i > 0 && strings.HasPrefix(raw[i:], "://") {
			return endpoint{}, fmt.Errorf("unsupported scheme %q (want %s)", raw[:i], schemeForms)
		}
		return endpoint{}, fmt.Errorf("missing scheme (want %s)", schemeForms)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("parse: %w", err)
	}
	ep := endpoint{scheme: strings.ToLower(u.Scheme)}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, errors.New("user info, query and fragment are not allowed")
	}
	switch ep.scheme {
	case "http", "https", "uwsgi":
		if u.Opaque != "" || (u.Path != "" && u.Path != "/") {
			return endpoint{}, errors.New("a path is not allowed; the request URI is passed through")
		}
		host, port := u.Hostname(), u.Port()
		if host == "" {
			return endpoint{}, errors.New("missing host")
		}
		if port == "" {
			switch ep.scheme {
			case "http":
				port = "80"
			case "https":
				port = "443"
			default:
				return endpoint{}, errors.New("missing port")
			}
		}
		ep.network, ep.addr = "tcp", net.JoinHostPort(host, port)
	case "unix", "uwsgi+unix":
		// unix:/run/app.sock parses with an empty host; unix:///run/app.sock
		// too. unix:run/app.sock (opaque, relative) is refused: a socket
		// path relative to the working directory is a trap under systemd.
		if u.Host != "" || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
			return endpoint{}, errors.New("want an absolute socket path, as in unix:/run/app.sock")
		}
		ep.network, ep.addr = "unix", u.Path
	}
	return ep, nil
}

const schemeForms = "http://HOST:PORT, https://HOST:PORT, unix:/PATH, uwsgi://HOST:PORT or uwsgi+unix:/PATH"

func knownScheme(s string) bool {
	switch strings.ToLower(s) {
	case "http", "https", "unix", "uwsgi", "uwsgi+unix":
		return true
	}
	return false
}
