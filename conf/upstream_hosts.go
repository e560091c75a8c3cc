package conf

import (
	"net/netip"
	"net/url"
	"strings"
)

// UpstreamHost is a host name (not an IP address) that an upstream
// server URL names, with where it was written.
type UpstreamHost struct {
	Pos  Pos
	Host string
	URL  string
}

// UpstreamHosts lists the host names of every upstream server, named
// blocks and inline `proxy URL;` alike, once per URL position. Unix
// sockets and IP literals need no lookup and are left out. The list is
// for warnings: tandem looks names up on every connection, so one that
// does not resolve yet is not an error in the config itself.
func (c *Config) UpstreamHosts() []UpstreamHost {
	var out []UpstreamHost
	for _, s := range c.UpstreamServers() {
		if h := hostOf(s.URL); h != "" {
			out = append(out, UpstreamHost{Pos: s.Pos, Host: h, URL: s.URL})
		}
	}
	return out
}

// UpstreamServers lists every upstream server, of named blocks and inline
// `proxy URL;` alike, once per URL position, in config order.
func (c *Config) UpstreamServers() []UpstreamServer {
	var out []UpstreamServer
	seen := map[Pos]bool{}
	add := func(u *Upstream) {
		if u == nil {
			return
		}
		for _, s := range u.Servers {
			if !seen[s.Pos] {
				seen[s.Pos] = true
				out = append(out, s)
			}
		}
	}
	for _, u := range c.Upstreams {
		add(u)
	}
	for _, s := range c.Sites {
		if s.Route.Proxy != nil {
			add(s.Route.Proxy.Upstream)
		}
		for _, l := range s.Locations {
			if l.Route.Proxy != nil {
				add(l.Route.Proxy.Upstream)
			}
		}
	}
	return out
}

// IsUnix reports whether the server is reached over a unix socket
// (unix: or uwsgi+unix:), on this host.
func (s UpstreamServer) IsUnix() bool { return isUnixURL(s.URL) }

func isUnixURL(raw string) bool {
	return strings.HasPrefix(raw, "unix:") || strings.HasPrefix(raw, "uwsgi+unix:")
}

// hostOf is the host name of an http(s):// or uwsgi:// server URL, or ""
// for unix sockets, IP literals and anything unparsable.
func hostOf(raw string) string {
	if isUnixURL(raw) {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	h := u.Hostname()
	if _, err := netip.ParseAddr(h); h == "" || err == nil {
		return "" // an IP address (zoned or not) needs no look-up
	}
	return h
}
