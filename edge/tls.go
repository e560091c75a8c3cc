package edge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
)

// TLS at the edge. Every socket is a modeListener: at each accept it asks
// the current router whether the connection's address serves TLS, and if
// so wraps the edgeConn in a *tls.Conn (the deadline and write-timeout
// handling stays underneath). The decision follows reloads, so an address
// can turn from plain HTTP to TLS without rebinding. Certificates, the
// client-certificate policy and the protocol settings come from the
// router's per-address tls.Config, picked by GetConfigForClient at each
// handshake; the socket's own base config only carries the session
// ticket keys, which crypto/tls rotates every 24h (each key is accepted
// for 7 days), so resumption survives reloads.

// tls12Suites are the TLS 1.2 suites offered: ECDHE key exchange (forward
// secrecy) with an AEAD cipher only; no CBC, no RSA key exchange, no 3DES.
// TLS 1.3 suites are all AEAD and not configurable in crypto/tls.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsCurves are the key exchanges, preferred first: the hybrid
// post-quantum X25519MLKEM768 (TLS 1.3 only; what current browsers send),
// then X25519 and P-256.
var tlsCurves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}

// h2MaxConcurrentStreams bounds the requests one HTTP/2 connection may
// have in flight; a client wanting more waits or opens another
// connection. 250 is Go's own default, written out so that it is a
// decision (nginx uses 128).
const h2MaxConcurrentStreams = 250

// errNotTLS is the handshake error for a connection accepted as TLS on an
// address that a reload turned plain before the handshake.
var errNotTLS = errors.New("address no longer serves TLS")

// addrTLSConfig builds the tls.Config of one address: modern protocol
// settings, certificates chosen by SNI among t's sites, and client
// certificates required when clientCAs is set.
func addrTLSConfig(t *hostTable, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     tls12Suites,
		CurvePreferences: tlsCurves,
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate:   t.certificate,
	}
	if clientCAs != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		// A resumed session is let in only if its client chain still ends
		// in this pool (crypto/tls checks it against the config that
		// GetConfigForClient returns), so tickets that outlive a reload
		// cannot bypass a tls_client_ca change.
		c.ClientCAs = clientCAs
	}
	return c
}

// addSite puts s on each of its addresses: the site itself where it
// serves TLS or has no TLS, and on a TLS site's plain HTTP addresses its
// HTTPS redirect (unless http_redirect is off, when the site itself).
func (rt *router) addSite(sc *conf.Site, s *site, tb *tlsBuild, d deps) error {
	var redirect *site
	if sc.TLS != nil {
		cert, err := tb.siteCert(sc)
		if err != nil {
			return err
		}
		if ac, ok := cert.(*acmeCert); ok {
			tb.acmeCerts = append(tb.acmeCerts, ac)
		}
		s.cert, s.hsts = cert, hstsValue(sc.HSTS)
		if sc.HTTPRedirect {
			redirect = &site{name: s.name, access: s.access, redirect: &httpsRedirect{
				host: firstExactName(sc.Names), tlsAddr: redirectTarget(sc.Listen), bound: d.bound,
			}}
		}
	}
	for _, l := range sc.Listen {
		target := s
		if !l.TLS && redirect != nil {
			target = redirect
		}
		first := rt.byAddr[l.Addr] == nil
		t := rt.add(l, sc.Names, target)
		// conf has checked that an address is all TLS or all plain, with
		// one tls_client_ca; the edge still refuses a mix it is handed.
		switch {
		case !first && (t.tls != nil) != l.TLS:
			return fmt.Errorf("listen %s: TLS and plain HTTP sites on one address", l.Addr)
		case !first && l.TLS && t.clientCA != sc.TLS.ClientCA:
			return fmt.Errorf("listen %s: TLS sites with different tls_client_ca on one address", l.Addr)
		case l.TLS:
			// A placeholder until finishTLS, when the table is complete.
			t.tls, t.clientCA = &tls.Config{}, sc.TLS.ClientCA
		}
		if l.TLS && sc.TLS.ACME != nil && sc.TLS.ACME.TLSALPN01 {
			t.acmeALPN = &tls.Config{} // also made real by finishTLS
		}
	}
	return nil
}

// finishTLS gives every TLS address its real tls.Config.
func (rt *router) finishTLS(tb *tlsBuild) error {
	for _, t := range rt.byAddr {
		if t.tls == nil {
			continue
		}
		pool, err := tb.clientCAs(t.clientCA)
		if err != nil {
			return err
		}
		t.tls = addrTLSConfig(t, pool)
		if t.acmeALPN != nil {
			t.acmeALPN = acmeALPNConfig(t)
		}
	}
	return nil
}

// certificate picks the certificate for a handshake by SNI, with the
// same rules as the Host header (exact name, longest wildcard, the
// address's default site), so a client without SNI or asking for an
// unknown name gets the default site's certificate.
func (t *hostTable) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s := t.lookup(normalHost(hello.ServerName))
	if s == nil || s.cert == nil {
		return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
	}
	return s.cert.certificate(hello)
}

// certSource is a TLS site's certificate.
type certSource interface {
	certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// fileCert is a `tls CERT KEY;` certificate, read once per config load.
type fileCert struct{ c *tls.Certificate }

func (f fileCert) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return f.c, nil }

// tlsBuild holds what a router build shares between its TLS sites: the
// internal CA (opened on first use), the client CA pools by file, and
// the ACME sites' certificates, whose names the server manages once the
// router is in service.
type tlsBuild struct {
	storage   string
	log       *zap.Logger
	ca        *localCA
	pools     map[string]*x509.CertPool
	acme      *acmeManager
	acmeCerts []*acmeCert
}

// siteCert loads or issues the certificate of a TLS site.
func (b *tlsBuild) siteCert(sc *conf.Site) (certSource, error) {
	t := sc.TLS
	if t.ACME != nil {
		if b.acme == nil {
			return nil, errors.New("tls auto and tls on_demand need the ACME manager, which this server was built without")
		}
		return b.acme.siteCert(sc, b.storage)
	}
	if !t.Internal {
		c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls %s %s: %w", t.CertFile, t.KeyFile, err)
		}
		warnCertNames(b.log, c.Leaf, sc.Names)
		return fileCert{&c}, nil
	}
	if b.ca == nil {
		ca, created, err := openLocalCA(b.storage)
		if err != nil {
			return nil, err
		}
		if created {
			b.log.Info("created the local CA for tls internal; print its root with `tandem ca` to trust it",
				zap.String("root", filepath.Join(ca.dir, caCertFile)))
		}
		b.ca = ca
	}
	return newInternalCert(b.ca, sc.Names, b.log)
}

// warnCertNames logs what will make browsers refuse a given certificate:
// it has expired, or it does not cover one of the site's names. tandem
// serves it anyway (a lapsed renewal should not take the site down).
func warnCertNames(log *zap.Logger, leaf *x509.Certificate, names []string) {
	if leaf == nil {
		return
	}
	if time.Now().After(leaf.NotAfter) {
		log.Warn("tls certificate has expired", zap.String("subject", leaf.Subject.CommonName), zap.Time("not_after", leaf.NotAfter))
	}
	for _, n := range names {
		probe := strings.Replace(n, "*", "wildcard-probe", 1)
		if n != "_" && leaf.VerifyHostname(probe) != nil {
			log.Warn("tls certificate does not cover a site name", zap.String("name", n), zap.Strings("covers", leaf.DNSNames))
		}
	}
}

// clientCAs loads a tls_client_ca bundle, once per file and build.
func (b *tlsBuild) clientCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	if p, ok := b.pools[path]; ok {
		return p, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls_client_ca: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tls_client_ca %s: no PEM certificate in the file", path)
	}
	if b.pools == nil {
		b.pools = map[string]*x509.CertPool{}
	}
	b.pools[path] = p
	return p, nil
}

// hstsValue formats a Strict-Transport-Security header (RFC 6797 §6.1).
func hstsValue(h *conf.HSTS) string {
	if h == nil {
		return ""
	}
	v := "max-age=" + strconv.FormatInt(int64(h.MaxAge/time.Second), 10)
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}

// httpsRedirect answers on a TLS site's plain HTTP addresses: 308 to the
// same host, path and query over HTTPS. 308 keeps the method and body, so
// a form POSTed to http:// is not turned into a GET.
type httpsRedirect struct {
	// host answers requests without a Host header (HTTP/1.0): the
	// site's first exact name, "" when it has none.
	host string
	// tlsAddr is the configured TLS address whose port the redirect
	// names; port 0 is resolved through bound.
	tlsAddr string
	bound   func(addr string) string
}

// port returns the HTTPS port to name in Location, "" for 443.
func (h *httpsRedirect) port() string {
	_, port, _ := net.SplitHostPort(h.tlsAddr)
	if port == "0" && h.bound != nil {
		if _, p, err := net.SplitHostPort(h.bound(h.tlsAddr)); err == nil {
			port = p
		}
	}
	if port == "443" || port == "0" {
		return ""
	}
	return port
}

func (h *httpsRedirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if host == "" {
		host = h.host
	}
	if host == "" {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host, _, _ = net.SplitHostPort(la.String())
		}
	}
	switch port := h.port(); {
	case port != "":
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		host = "[" + host + "]" // an IPv6 literal
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// redirectTarget picks the address a site's redirect points at: one on
// port 443 if the site has it, else its first TLS address.
func redirectTarget(listens []conf.Listen) string {
	first := ""
	for _, l := range listens {
		if !l.TLS {
			continue
		}
		if isPort(l.Addr, "443") {
			return l.Addr
		}
		if first == "" {
			first = l.Addr
		}
	}
	return first
}

func isPort(addr, port string) bool {
	_, p, err := net.SplitHostPort(addr)
	return err == nil && p == port
}

// firstExactName is the first name that is neither "_" nor a wildcard.
func firstExactName(names []string) string {
	for _, n := range names {
		if n != "_" && !strings.HasPrefix(n, "*.") {
			return n
		}
	}
	return ""
}

// modeListener decides per accepted connection between TLS and plain
// HTTP, from the current router (see the top of this file).
type modeListener struct {
	net.Listener
	srv  *Server
	addr string // the configured address this socket was bound for
	base *tls.Config
}

func newModeListener(ln net.Listener, srv *Server, addr string) *modeListener {
	l := &modeListener{Listener: ln, srv: srv, addr: addr}
	l.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			t := srv.router.Load().tableFor(addr, hello.Conn.LocalAddr())
			switch {
			case t == nil || t.tls == nil:
				return nil, errNotTLS
			case t.acmeALPN != nil && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol:
				return t.acmeALPN, nil
			}
			return t.tls, nil
		},
	}
	return l
}

func (l *modeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if t := l.srv.router.Load().tableFor(l.addr, c.LocalAddr()); t != nil && t.tls != nil {
		return tls.Server(c, l.base), nil
	}
	return c, nil
}

var (
	_ net.Listener = (*modeListener)(nil)
	_ http.Handler = (*httpsRedirect)(nil)
	_ certSource   = fileCert{}
	_ certSource   = (*internalCert)(nil)
)
