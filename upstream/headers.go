package upstream

import (
	"net/http"
	"net/netip"
	"strings"
)

// Forwarding headers. Each proxy hop appends the peer it saw; a hop can
// only vouch for its own peer, so incoming values are kept (appended
// to) only when that peer is a trusted proxy. From anyone else they are
// forged or meaningless and are replaced.

// peerAddr is the immediate peer from RemoteAddr ("ip:port", or a bare
// IP). It is invalid for clients on a unix-socket listener.
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// ClientIP is the address of the client behind r: its peer, or, when the
// peer is one of trusted, the address X-Forwarded-For gives for it (the
// rightmost entry that is not itself a trusted proxy). The edge's
// allow/deny rules use it, as the ip_hash balancer does.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	return clientIP(r, peer, inPrefixes(peer, trusted), trusted)
}

// isTrusted reports whether a is in the trusted proxy list.
func (h *Handler) isTrusted(a netip.Addr) bool {
	return inPrefixes(a, h.opts.TrustedProxies)
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("")
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the real client: the peer itself unless it is trusted;
// then X-Forwarded-For is walked from the right (the entry our peer
// added) past trusted proxies to the first untrusted address. If every
// entry is trusted the leftmost is the client; an unparsable entry
// stops the walk at the last good one, since nothing left of it can be
// vouched for.
func clientIP(r *http.Request, peer netip.Addr, trusted bool, proxies []netip.Prefix) netip.Addr {
	if !trusted {
		return peer
	}
	client := peer
	vals := r.Header.Values("X-Forwarded-For")
	for i := len(vals) - 1; i >= 0; i-- {
		rest := vals[i]
		for rest != "" {
			var entry string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				entry, rest = rest, ""
			}
			a := parseForwardedIP(strings.TrimSpace(entry))
			if !a.IsValid() {
				return client
			}
			client = a
			if !inPrefixes(a, proxies) {
				return a
			}
		}
	}
	return client
}

// parseForwardedIP accepts an X-Forwarded-For entry: an IP, optionally
// with a port ("1.2.3.4:5", "[::1]:5").
func parseForwardedIP(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// setForwarded sets X-Forwarded-For, -Proto, -Host and Forwarded (RFC
// 7239) on the outgoing headers h.
func setForwarded(h http.Header, in *http.Request, peer netip.Addr, trusted bool) {
	scheme := "http"
	if in.TLS != nil {
		scheme = "https"
	}
	if peer.IsValid() {
		xff := peer.String()
		if prior := in.Header.Values("X-Forwarded-For"); trusted && len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + xff
		}
		h.Set("X-Forwarded-For", xff)
	}
	if !trusted {
		// Not set by this proxy, but frameworks and uWSGI believe them
		// (X-Forwarded-Ssl: on makes wsgi.url_scheme https): from an
		// untrusted peer they are forged.
		h.Del("X-Forwarded-Ssl")
		h.Del("X-Forwarded-Port")
	}
	proto, host := scheme, in.Host
	if trusted {
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	h.Set("X-Forwarded-Proto", proto)
	if host != "" {
		h.Set("X-Forwarded-Host", host)
	}
	fwd := forwardedElement(peer, in.Host, scheme)
	if prior := in.Header.Values("Forwarded"); trusted && len(prior) > 0 {
		fwd = strings.Join(prior, ", ") + ", " + fwd
	}
	h.Set("Forwarded", fwd)
}

// forwardedElement is this hop's Forwarded element. RFC 7239 §6: an
// IPv6 node is bracketed and quoted; an unknown peer (a unix socket) is
// "unknown".
func forwardedElement(peer netip.Addr, host, scheme string) string {
	var b strings.Builder
	b.WriteString("for=")
	switch {
	case !peer.IsValid():
		b.WriteString("unknown")
	case peer.Is6():
		b.WriteString(`"[` + peer.String() + `]"`)
	default:
		b.WriteString(peer.String())
	}
	if host != "" {
		b.WriteString(";host=")
		b.WriteString(quoteIfNeeded(host))
	}
	b.WriteString(";proto=")
	b.WriteString(scheme)
	return b.String()
}

// quoteIfNeeded returns s as an RFC 7230 token when it is one, else as
// a quoted-string (a host with a port needs quotes: ':' is no tchar).
func quoteIfNeeded(s string) string {
	token := true
	for i := 0; i < len(s) && token; i++ {
		token = isTchar(s[i])
	}
	if token {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
