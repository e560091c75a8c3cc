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
	seen := map[Pos]bool{}
	add := func(u *Upstream) {
		if u == nil {
			return
		}
		for _, s := range u.Servers {
			if seen[s.Pos] {
				continue
			}
			seen[s.Pos] = true
			if h := hostOf(s.URL); h != "" {
				out = append(out, UpstreamHost{Pos: s.Pos, Host: h, URL: s.URL})
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

// hostOf is the host name of an http(s):// or uwsgi:// server URL, or ""
// for unix sockets, IP literals and anything unparsable.
func hostOf(raw string) string {
	if strings.HasPrefix(raw, "unix:") || strings.HasPrefix(raw, "uwsgi+unix:") {
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
