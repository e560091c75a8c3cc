package conf

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// defaultTLSRenewCheck is how often ACME certificates are looked at when
// tls_renew_check is not set (certmagic's own default).
const defaultTLSRenewCheck = 10 * time.Minute

// acmeChallenges are the challenge types acme_challenges accepts.
var acmeChallenges = []string{"http-01", "tls-alpn-01"}

// buildTLSAuto reads `tls auto [EMAIL];`.
func buildTLSAuto(b *builder, sc *scope, n *node) {
	t := &SiteTLS{Pos: n.Pos, Auto: true}
	if len(n.Args) == 2 {
		email := n.Args[1]
		if err := checkEmail(email.Value); err != nil {
			b.argErr(n, email, err)
			return
		}
		if sc.site.acme.Email != "" {
			b.errs.add(email.Pos, "tls auto: the email is given twice (here and in acme_email); keep one")
			return
		}
		sc.site.acme.Email = email.Value
	}
	sc.site.TLS = t
}

// buildTLSOnDemand reads `tls on_demand ask URL;`. n has three arguments
// at most (the directive table allows two for the other forms, so the
// count is checked here).
func buildTLSOnDemand(b *builder, sc *scope, n *node) {
	a := n.Args
	if len(a) != 3 || a[1].Value != "ask" {
		b.errs.add(n.Pos, "tls on_demand: expected \"tls on_demand ask URL;\" (URL approves each name: a GET with ?domain=NAME must answer 200)")
		return
	}
	u, err := url.Parse(a[2].Value)
	if err == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
		err = fmt.Errorf("expected an http:// or https:// URL, got %q", a[2].Value)
	}
	if err != nil {
		b.argErr(n, a[2], err)
		return
	}
	sc.site.TLS = &SiteTLS{Pos: n.Pos, OnDemandAsk: a[2].Value}
}

// acmeOf is the ACME settings a directive in sc writes: the site's own,
// or the top-level ones.
func acmeOf(b *builder, sc *scope, n *node) *ACME {
	if sc.site == nil {
		return &b.cfg.ACME
	}
	if sc.site.acmeSet.Line == 0 {
		sc.site.acmeSet = n.Pos
	}
	return &sc.site.acme
}

// buildACMECA reads `acme_ca URL|letsencrypt|letsencrypt_staging;`.
func buildACMECA(b *builder, sc *scope, n *node) {
	v := n.Args[0].Value
	switch v {
	case "letsencrypt":
		v = LetsEncrypt
	case "letsencrypt_staging":
		v = LetsEncryptStaging
	default:
		u, err := url.Parse(v)
		if err == nil && (u.Scheme != "https" || u.Host == "") {
			// RFC 8555 §6.1: an ACME server is reached over HTTPS only.
			err = fmt.Errorf("expected an https:// ACME directory URL, letsencrypt or letsencrypt_staging, got %q", v)
		}
		if err != nil {
			b.argErr(n, n.Args[0], err)
			return
		}
	}
	a := acmeOf(b, sc, n)
	a.CA, a.caPos = v, n.Args[0].Pos
}

// buildACMECARoot reads `acme_ca_root FILE;`; validate reads the file.
func buildACMECARoot(b *builder, sc *scope, n *node) {
	a := acmeOf(b, sc, n)
	a.CARoot, a.rootPos = n.path(n.Args[0]), n.Args[0].Pos
}

// buildACMEEmail reads `acme_email EMAIL;`.
func buildACMEEmail(b *builder, sc *scope, n *node) {
	if err := checkEmail(n.Args[0].Value); err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	a := acmeOf(b, sc, n)
	if a.Email != "" && sc.site != nil {
		b.errs.add(n.Pos, "acme_email: the email is given twice (here and in tls auto); keep one")
		return
	}
	a.Email = n.Args[0].Value
}

// buildACMEChallenges reads `acme_challenges TYPE...;`.
func buildACMEChallenges(b *builder, sc *scope, n *node) {
	var http01, alpn bool
	for _, arg := range n.Args {
		switch arg.Value {
		case "http-01":
			http01 = true
		case "tls-alpn-01":
			alpn = true
		default:
			b.argErr(n, arg, fmt.Errorf("expected %s, got %q (DNS-01 is not supported)", strings.Join(acmeChallenges, " or "), arg.Value))
			return
		}
	}
	a := acmeOf(b, sc, n)
	a.HTTP01, a.TLSALPN01, a.challengesSet = http01, alpn, true
}

func buildTLSRenewCheck(b *builder, _ *scope, n *node) {
	d, err := parseDuration(n.Args[0].Value)
	if err == nil && d <= 0 {
		err = fmt.Errorf("expected a duration above zero, got %q", n.Args[0].Value)
	}
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	b.cfg.TLSRenewCheck = d
}

// checkEmail catches the likeliest slip (a name where the email goes);
// the CA checks the rest.
func checkEmail(s string) error {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " <>") {
		return fmt.Errorf("expected an email address, got %q", s)
	}
	return nil
}

// usesACME reports whether t gets its certificates from an ACME CA.
func (t *SiteTLS) usesACME() bool {
	return t != nil && (t.Auto || t.OnDemandAsk != "")
}

// validateSiteACME checks an ACME site's names and the acme_* directives
// of any site: they mean nothing without tls auto or tls on_demand.
func validateSiteACME(s *Site, e env, errs *errList) {
	if !s.TLS.usesACME() {
		if s.acmeSet.Line != 0 && (s.TLS != nil || !s.tlsWritten) {
			errs.add(s.acmeSet, "acme_* directives need \"tls auto\" or \"tls on_demand\" in this site")
		}
		return
	}
	if s.acme.CARoot != "" {
		checkCA(e, s.acme.rootPos, "acme_ca_root", s.acme.CARoot, errs)
	}
	if !s.TLS.Auto {
		return
	}
	named := false
	for i, n := range s.Names {
		switch {
		case n == "_":
		case strings.HasPrefix(n, "*."):
			errs.add(s.namePos[i], "tls auto cannot get a certificate for %q: wildcard certificates need the DNS-01 challenge, which tandem does not do; list the names, or use \"tls on_demand ask URL;\"", n)
		default:
			named = true
		}
	}
	if !named {
		errs.add(s.TLS.Pos, "\"tls auto\" needs a site name to get a certificate for (e.g. site example.com { ... }); for any name, use \"tls on_demand ask URL;\"")
	}
}

// validateMainACME checks the top-level acme_ca_root when set.
func validateMainACME(cfg *Config, e env, errs *errList) {
	if cfg.ACME.CARoot != "" {
		checkCA(e, cfg.ACME.rootPos, "acme_ca_root", cfg.ACME.CARoot, errs)
	}
}

// applyACMEDefaults gives an ACME site its effective settings: its own
// acme_* directives over the top-level ones over the defaults.
func applyACMEDefaults(s *Site, cfg *Config) {
	if !s.TLS.usesACME() {
		return
	}
	a, top := s.acme, cfg.ACME
	if a.CA == "" {
		a.CA = top.CA
	}
	if a.CA == "" {
		a.CA = LetsEncrypt
	}
	if a.CARoot == "" {
		a.CARoot = top.CARoot
	}
	if a.Email == "" {
		a.Email = top.Email
	}
	if !a.challengesSet {
		a.HTTP01, a.TLSALPN01, a.challengesSet = top.HTTP01, top.TLSALPN01, top.challengesSet
	}
	if !a.challengesSet {
		a.HTTP01, a.TLSALPN01 = true, true
	}
	s.TLS.ACME = &a
}
