package edge

import (
	"net/http"

	"go.uber.org/zap"
)

// Cleartext HTTP/2. A plain address listed with the h2c flag by any of
// its sites (or by a specific address its wildcard socket covers) accepts
// HTTP/2 with prior knowledge (RFC 9113 §3.3) beside HTTP/1.1, through
// net/http's own support (Protocols.SetUnencryptedHTTP2). The h2c upgrade
// from HTTP/1.1 (the Upgrade: h2c header) is not offered: RFC 9113
// deprecates it. The setting belongs to the socket's http.Server, so it
// is fixed when the address is opened: a reload that changes it on a kept
// address logs a warning and applies after a restart, like the listener
// limits.

// wantsH2C reports whether the socket bound for addr serves cleartext
// HTTP/2.
func (rt *router) wantsH2C(addr string) bool {
	if t := rt.byAddr[addr]; t != nil && t.h2c {
		return true
	}
	for _, t := range rt.covered[addr] {
		if t.h2c {
			return true
		}
	}
	return false
}

// enableH2C makes hs accept cleartext HTTP/2 as well as HTTP/1.1 (and
// HTTP/2 by ALPN, should a reload turn the address to TLS).
func enableH2C(hs *http.Server) {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	hs.Protocols = &p
}

// warnH2CLocked logs kept addresses whose h2c flag rt changes.
func (s *Server) warnH2CLocked(rt *router) {
	for addr, l := range s.listeners {
		if rt.sockets[addr] && rt.wantsH2C(addr) != l.h2c {
			s.log.Warn("h2c changed on a listening address; it applies after a restart",
				zap.String("addr", addr), zap.Bool("h2c_now", l.h2c))
		}
	}
}
