package conf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"
	"time"
)

// hstsPreloadMinAge is the shortest max-age hstspreload.org accepts.
const hstsPreloadMinAge = 365 * 24 * time.Hour

// buildTLS reads `tls CERT_FILE KEY_FILE;`, `tls internal;`, `tls auto
// [EMAIL];` and `tls on_demand ask URL;` (the last two in build_acme.go).
func buildTLS(b *builder, sc *scope, n *node) {
	a := n.Args
	switch {
	case a[0].Value == "on_demand":
		buildTLSOnDemand(b, sc, n)
	case len(a) > 2:
		b.argErr(n, a[2], fmt.Errorf("expected CERT_FILE KEY_FILE, internal, auto [EMAIL] or on_demand ask URL, got a third argument %q", a[2].Value))
	case a[0].Value == "auto":
		buildTLSAuto(b, sc, n)
	case a[0].Value == "internal" && len(a) == 1:
		sc.site.TLS = &SiteTLS{Pos: n.Pos, Internal: true}
	case a[0].Value == "internal":
		b.argErr(n, a[1], fmt.Errorf("\"internal\" takes no further argument, got %q", a[1].Value))
	case len(a) == 1:
		b.argErr(n, a[0], fmt.Errorf("expected CERT_FILE KEY_FILE, internal, auto [EMAIL] or on_demand ask URL, got %q alone", a[0].Value))
	default:
		sc.site.TLS = &SiteTLS{
			Pos: n.Pos, CertFile: n.path(a[0]), KeyFile: n.path(a[1]),
			certPos: a[0].Pos, keyPos: a[1].Pos,
		}
	}
}

// buildTLSClientCA records the file; finishSiteTLS moves it into the
// site's TLS and validate reads it.
func buildTLSClientCA(b *builder, sc *scope, n *node) {
	sc.site.clientCA, sc.site.clientCAPos = n.path(n.Args[0]), n.Args[0].Pos
}

// buildHSTS reads `hsts DURATION [include_subdomains] [preload];`.
func buildHSTS(b *builder, sc *scope, n *node) {
	d, err := parseDuration(n.Args[0].Value)
	if err == nil && d%time.Second != 0 {
		err = fmt.Errorf("max-age is counted in whole seconds, got %q", n.Args[0].Value)
	}
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	h := &HSTS{Pos: n.Pos, MaxAge: d}
	var preloadPos Pos
	for _, a := range n.Args[1:] {
		switch {
		case a.Value == "include_subdomains" && !h.IncludeSubdomains:
			h.IncludeSubdomains = true
		case a.Value == "preload" && !h.Preload:
			h.Preload, preloadPos = true, a.Pos
		default:
			b.argErr(n, a, fmt.Errorf("expected include_subdomains or preload (each at most once), got %q", a.Value))
			return
		}
	}
	if h.Preload && (!h.IncludeSubdomains || h.MaxAge < hstsPreloadMinAge) {
		// Preload lists refuse such a policy, and it cannot be taken back
		// quickly once a browser ships it, so a typo should not reach one.
		b.errs.add(preloadPos, "hsts: preload needs include_subdomains and a duration of at least 365d (the preload lists' rules)")
		return
	}
	sc.site.HSTS = h
}

func buildHTTPRedirect(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		s := sc.site
		s.HTTPRedirect, s.httpRedirectSet, s.httpRedirectPos = *v, true, n.Pos
	}
}

func buildTLSStorage(b *builder, _ *scope, n *node) {
	b.cfg.TLSStorage = n.path(n.Args[0])
}

// finishSiteTLS runs once a site block is read: it reports TLS
// directives in a site without tls, gives a TLS site without listen its
// default addresses, and marks which addresses serve TLS.
func finishSiteTLS(b *builder, s *Site, sc *scope) {
	s.tlsWritten = sc.written["tls"]
	if s.TLS == nil {
		if !s.tlsWritten { // a broken tls is reported already
			reportWithoutTLS(b, s)
		}
		return
	}
	s.TLS.ClientCA = s.clientCA
	if !s.listenWritten {
		s.Listen = []Listen{{Pos: s.Pos, Addr: ":443"}, {Pos: s.Pos, Addr: ":80"}}
	}
	anyTLS := false
	for i := range s.Listen {
		l := &s.Listen[i]
		l.TLS = !l.HTTP && !isPort80(l.Addr)
		anyTLS = anyTLS || l.TLS
	}
	if !anyTLS && len(s.Listen) > 0 {
		b.errs.add(s.TLS.Pos, "%s has tls but no address serving it: port 80 and addresses marked http serve plain HTTP; add e.g. \"listen 443;\"", siteLabel(s))
	}
	if s.TLS.Internal && !slices.ContainsFunc(s.Names, func(n string) bool { return n != "_" }) {
		b.errs.add(s.TLS.Pos, "\"tls internal\" needs a site name to put in the certificate; name the site (e.g. site localhost { ... })")
	}
}

// reportWithoutTLS reports the directives that only mean something with tls.
func reportWithoutTLS(b *builder, s *Site) {
	if s.clientCA != "" {
		b.errs.add(s.clientCAPos, "tls_client_ca needs tls in this site (client certificates are asked during the TLS handshake)")
	}
	if s.HSTS != nil {
		b.errs.add(s.HSTS.Pos, "hsts needs tls in this site (browsers ignore it over plain HTTP)")
	}
	if s.httpRedirectSet {
		b.errs.add(s.httpRedirectPos, "\"http_redirect\" has no effect without tls in this site")
	}
}

func isPort80(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "80"
}

// validateSiteTLS checks the files a site's TLS reads: the certificate
// and key exist, parse and belong together, and tls_client_ca holds CAs.
func validateSiteTLS(s *Site, e env, errs *errList) {
	t := s.TLS
	if t == nil {
		return
	}
	if t.ClientCA != "" {
		checkCA(e, s.clientCAPos, "tls_client_ca", t.ClientCA, errs)
	}
	if t.Internal || t.usesACME() {
		return
	}
	certPEM, certOK := readTLSFile(e, t.certPos, "certificate", t.CertFile, errs)
	keyPEM, keyOK := readTLSFile(e, t.keyPos, "key", t.KeyFile, errs)
	if !certOK || !keyOK {
		return
	}
	if err := checkCertPEM(certPEM); err != nil {
		errs.add(t.certPos, "tls certificate %q: %v", t.CertFile, err)
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		if strings.Contains(msg, "does not match") {
			msg = fmt.Sprintf("does not match the certificate in %q", t.CertFile)
		}
		errs.errs = append(errs.errs, &Error{Pos: t.keyPos, Msg: fmt.Sprintf("tls key %q: %s", t.KeyFile, msg), Err: err})
	}
}

// readTLSFile reads a certificate or key file, reporting why it cannot.
func readTLSFile(e env, pos Pos, what, path string, errs *errList) ([]byte, bool) {
	data, err := e.readFile(path)
	label := fmt.Sprintf("tls %s %q", what, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		errs.errs = append(errs.errs, &Error{Pos: pos, Msg: label + ": file does not exist", Err: err})
	case err != nil:
		errs.wrap(pos, label, pathErrCause(err))
	default:
		return data, true
	}
	return nil, false
}

// checkCertPEM says what is wrong with a certificate file, so an
// operator does not get a key-pair error for a file given in the wrong
// place.
func checkCertPEM(data []byte) error {
	sawKey := false
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		switch {
		case blk == nil && sawKey:
			return errors.New("holds a private key but no certificate; are CERT_FILE and KEY_FILE swapped?")
		case blk == nil:
			return errors.New("no PEM certificate in the file")
		case blk.Type == "CERTIFICATE":
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return fmt.Errorf("cannot parse the certificate: %w", err)
			}
			return nil
		case strings.HasSuffix(blk.Type, "PRIVATE KEY"):
			sawKey = true
		}
	}
}

// addrUse is the first site met on a listen address, for the checks
// that every site on one address agrees on TLS.
type addrUse struct {
	site     *Site
	pos      Pos
	tls      bool
	clientCA string
}

// validateAddrTLS checks s's addresses against the sites before it: an
// address serves TLS or plain HTTP, not both, and its TLS sites share
// one tls_client_ca (the handshake asks for a client certificate before
// the Host header can say which site is meant).
func validateAddrTLS(s *Site, uses map[string]addrUse, errs *errList) {
	for _, l := range s.Listen {
		u := addrUse{site: s, pos: l.Pos, tls: l.TLS}
		if s.TLS != nil {
			u.clientCA = s.TLS.ClientCA
		}
		first, ok := uses[l.Addr]
		switch {
		case !ok:
			uses[l.Addr] = u
		case first.site == s:
		case first.tls != u.tls:
			errs.add(l.Pos, "%s serves %s on %s but %s (at %s) serves %s there; an address is either TLS or plain HTTP, so give one of them another address",
				siteLabel(s), u.role(), l.Addr, siteLabel(first.site), first.pos, first.role())
		case u.tls && first.clientCA != u.clientCA:
			errs.add(l.Pos, "%s on %s has tls_client_ca %s but %s (at %s) has %s; all TLS sites on one address must use the same tls_client_ca",
				siteLabel(s), l.Addr, caLabel(u.clientCA), siteLabel(first.site), first.pos, caLabel(first.clientCA))
		}
	}
}

// role says how a site answers on an address, for conflict messages.
func (u addrUse) role() string {
	switch {
	case u.tls:
		return "TLS"
	case u.site.TLS == nil:
		return "plain HTTP"
	case u.site.httpRedirectSet && !u.site.HTTPRedirect:
		return "plain HTTP (http_redirect off)"
	}
	return "plain HTTP (its redirect to HTTPS)"
}

func caLabel(path string) string {
	if path == "" {
		return "none"
	}
	return fmt.Sprintf("%q", path)
}
