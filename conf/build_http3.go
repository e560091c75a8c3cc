package conf

// HTTP/3 and cleartext HTTP/2: the `http3 on|off;` site directive and the
// `h2c` listen flag (parsed in buildListen). Both only add a protocol to
// addresses the site already has; the checks here run once the site's
// block is read, after finishSiteTLS has marked its TLS addresses.

// buildHTTP3 reads `http3 on|off;`.
func buildHTTP3(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		sc.site.HTTP3, sc.site.http3Pos = *v, n.Pos
	}
}

// finishSiteHTTP3 reports `http3 on` in a site without tls and the h2c
// flag on an address that serves TLS.
func finishSiteHTTP3(b *builder, s *Site) {
	if s.HTTP3 && s.TLS == nil && !s.tlsWritten { // a broken tls is reported already
		b.errs.add(s.http3Pos, "http3 needs tls in this site (HTTP/3 runs over QUIC, which is always encrypted)")
	}
	for _, l := range s.Listen {
		if l.H2C && l.TLS {
			b.errs.add(l.h2cPos, "h2c is for plain HTTP addresses; TLS addresses negotiate HTTP/2 by ALPN (%s serves TLS in %s)", l.Addr, siteLabel(s))
		}
	}
}
