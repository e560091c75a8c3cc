package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
)

// ACME certificates (`tls auto`, `tls on_demand`) come from certmagic.
// The acmeManager lives as long as the Server, so reloads keep what it
// holds: one certmagic cache, whose background loop renews certificates
// and refreshes OCSP staples, and one issuer (a certmagic.Config with its
// ACMEIssuer) per distinct set of ACME settings. A router build only
// looks issuers up and lists the names it wants managed; the Server hands
// that list to manage once the router is in service, so a config that
// fails to build or bind never starts an order.
//
// Challenges are answered by tandem's own sockets: HTTP-01 by every plain
// HTTP address before routing (listenerHandler), TLS-ALPN-01 by every TLS
// address that serves an ACME site (its acme-tls/1 config). certmagic's
// own challenge listeners are pointed at those addresses, find them taken
// and stand aside.

// Rate limit of on-demand issuance: at most onDemandBurst new
// certificates per onDemandWindow for all on-demand sites of an issuer,
// whatever the ask endpoint approves, so a flood of handshakes for
// approved names cannot run into the CA's own (much longer) limits.
const (
	onDemandBurst  = 10
	onDemandWindow = time.Minute
	// onDemandTicketWait is how long a name the ask endpoint approved
	// waits for the rate limiter's ticket before it is refused.
	onDemandTicketWait = 250 * time.Millisecond
	// askTimeout bounds one call to the ask endpoint; the handshake that
	// triggered it waits that long at most.
	askTimeout = 10 * time.Second
)

// acmeManager obtains and renews ACME certificates for the server.
type acmeManager struct {
	log *zap.Logger
	// renewCheck is the cache's renewal interval, fixed when the cache
	// is made (tls_renew_check at that time).
	renewCheck time.Duration
	// onDemandBurst and onDemandWindow are the on-demand rate limit
	// (the constants in production; tests shrink them).
	onDemandBurst  int
	onDemandWindow time.Duration

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	cache   *certmagic.Cache        // made on first use; guarded by mu
	issuers map[acmeKey]*acmeIssuer // guarded by mu
	// managed maps each name that manage was given to its issuer, for
	// the cache's renewals and to stop managing names that left the
	// config; guarded by mu.
	managed map[string]*acmeIssuer
}

// acmeKey is what makes two sites share an issuer.
type acmeKey struct {
	ca, caRoot, email, storage string
	http01, tlsALPN01          bool
	ask                        string
	// httpAddr and tlsAddr are where challenges arrive (see
	// challengeAddrs); certmagic binds them itself when tandem does not.
	httpAddr, tlsAddr string
}

// acmeIssuer is one certmagic.Config with its ACME issuer.
type acmeIssuer struct {
	key    acmeKey
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	limit  *certmagic.RingBufferRateLimiter // on-demand only
}

func newACMEManager(log *zap.Logger, renewCheck time.Duration) *acmeManager {
	ctx, cancel := context.WithCancel(context.Background())
	return &acmeManager{
		log: log.Named("acme"), renewCheck: renewCheck,
		onDemandBurst: onDemandBurst, onDemandWindow: onDemandWindow,
		ctx: ctx, cancel: cancel,
		issuers: map[acmeKey]*acmeIssuer{}, managed: map[string]*acmeIssuer{},
	}
}

// siteCert returns the certificate source of an ACME site, making its
// issuer on first use.
func (m *acmeManager) siteCert(sc *conf.Site, storage string) (*acmeCert, error) {
	a := sc.TLS.ACME
	httpAddr, tlsAddr := challengeAddrs(sc.Listen)
	key := acmeKey{
		ca: a.CA, caRoot: a.CARoot, email: a.Email, storage: storage,
		http01: a.HTTP01, tlsALPN01: a.TLSALPN01, ask: sc.TLS.OnDemandAsk,
		httpAddr: httpAddr, tlsAddr: tlsAddr,
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	iss, ok := m.issuers[key]
	if !ok {
		var err error
		if iss, err = m.newIssuer(key); err != nil {
			return nil, err
		}
		m.issuers[key] = iss
	}
	c := &acmeCert{iss: iss, name: firstExactName(sc.Names)}
	if sc.TLS.Auto {
		for _, n := range sc.Names {
			if n != "_" && !strings.HasPrefix(n, "*.") {
				c.names = append(c.names, n)
			}
		}
	}
	return c, nil
}

// newIssuer makes the certmagic config for key; m.mu is held.
func (m *acmeManager) newIssuer(key acmeKey) (*acmeIssuer, error) {
	if m.cache == nil {
		m.cache = certmagic.NewCache(certmagic.CacheOptions{
			GetConfigForCert:   m.configForCert,
			RenewCheckInterval: m.renewCheck,
			OCSPCheckInterval:  m.renewCheck,
			Logger:             m.log,
		})
	}
	roots, err := acmeRoots(key.caRoot)
	if err != nil {
		return nil, err
	}
	iss := &acmeIssuer{key: key}
	tmpl := certmagic.Config{
		// FileStorage writes directories 0700 and files 0600.
		Storage: &certmagic.FileStorage{Path: filepath.Join(key.storage, "acme")},
		Logger:  m.log,
	}
	if key.ask != "" {
		iss.limit = certmagic.NewRateLimiter(m.onDemandBurst, m.onDemandWindow)
		tmpl.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: iss.askDecision(m.log)}
	}
	iss.magic = certmagic.New(m.cache, tmpl)
	listenHost, httpPort := splitPort(key.httpAddr)
	tlsHost, tlsPort := splitPort(key.tlsAddr)
	if listenHost == "" {
		listenHost = tlsHost
	}
	iss.issuer = certmagic.NewACMEIssuer(iss.magic, certmagic.ACMEIssuer{
		CA:    key.ca,
		Email: key.email,
		// Using a CA means accepting its terms; `tls auto` is the
		// operator asking for exactly that, as in Caddy.
		Agreed:                  true,
		TrustedRoots:            roots,
		DisableHTTPChallenge:    !key.http01,
		DisableTLSALPNChallenge: !key.tlsALPN01,
		ListenHost:              listenHost,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          tlsPort,
		Logger:                  m.log,
	})
	iss.magic.Issuers = []certmagic.Issuer{iss.issuer}
	return iss, nil
}

// acmeRoots is the pool the ACME client trusts: the system roots plus
// acme_ca_root's certificates; nil (the system roots) without one.
func acmeRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acme_ca_root: %w", err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("acme_ca_root %s: no PEM certificate in the file", path)
	}
	return pool, nil
}

// challengeAddrs picks a site's addresses for the two challenge types:
// its first plain HTTP address (the CA connects to port 80) and its first
// TLS address (port 443); "" when it has none.
func challengeAddrs(listens []conf.Listen) (httpAddr, tlsAddr string) {
	for _, l := range listens {
		switch {
		case l.TLS && tlsAddr == "":
			tlsAddr = l.Addr
		case !l.TLS && httpAddr == "":
			httpAddr = l.Addr
		}
	}
	return httpAddr, tlsAddr
}

// splitPort splits host:port; 0 (certmagic's default port) when addr is
// empty or its port is 0.
func splitPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// askDecision is certmagic's DecisionFunc for an on-demand issuer: the ask
// endpoint must approve the name (200 to GET ?domain=NAME), then the rate
// limit must allow one more certificate.
func (iss *acmeIssuer) askDecision(log *zap.Logger) func(ctx context.Context, name string) error {
	client := &http.Client{Timeout: askTimeout}
	return func(ctx context.Context, name string) error {
		u, err := url.Parse(iss.key.ask)
		if err != nil {
			return fmt.Errorf("tls on_demand ask %q: %w", iss.key.ask, err)
		}
		q := u.Query()
		q.Set("domain", name)
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return fmt.Errorf("tls on_demand ask: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			log.Error("tls on_demand: ask endpoint unreachable; refusing the certificate", zap.String("name", name), zap.Error(err))
			return fmt.Errorf("tls on_demand ask for %q: %w", name, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			log.Info("tls on_demand: ask endpoint refused a name", zap.String("name", name), zap.Int("status", resp.StatusCode))
			return fmt.Errorf("tls on_demand: %q not approved (ask endpoint answered %d)", name, resp.StatusCode)
		}
		// certmagic's limiter hands tickets over a channel from a goroutine
		// of its own, which re-arms after each ticket taken: Allow alone
		// refused a second name asked for right after a first (a test
		// failed that way under load). A short wait takes a ticket that is
		// there or about to be, and refuses only when the window is full.
		wctx, cancel := context.WithTimeout(ctx, onDemandTicketWait)
		err = iss.limit.Wait(wctx)
		cancel()
		if err != nil {
			log.Warn("tls on_demand: rate limit reached; refusing the certificate for now", zap.String("name", name),
				zap.Int("max", iss.limit.MaxEvents()), zap.Duration("window", iss.limit.Window()))
			return errors.New("tls on_demand: issuance rate limit reached")
		}
		return nil
	}
}

// configForCert tells certmagic's cache which config renews a cached
// certificate: the issuer that manages one of its names, else (a
// certificate obtained on demand) an on-demand issuer with its storage.
func (m *acmeManager) configForCert(c certmagic.Certificate) (*certmagic.Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range c.Names {
		if iss, ok := m.managed[n]; ok {
			return iss.magic, nil
		}
	}
	for _, iss := range m.issuers {
		if iss.key.ask != "" {
			return iss.magic, nil
		}
	}
	return nil, fmt.Errorf("no ACME config manages %v", c.Names)
}

// manage starts obtaining (or loading from storage) the certificates of
// the names certs want and stops renewing names no router wants any
// more. It runs after a router is put in service.
func (m *acmeManager) manage(certs []*acmeCert) {
	want := map[string]*acmeIssuer{}
	for _, c := range certs {
		for _, n := range c.names {
			want[n] = c.iss
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var gone []certmagic.SubjectIssuer
	for n, iss := range m.managed {
		if want[n] != iss {
			gone = append(gone, certmagic.SubjectIssuer{Subject: n, IssuerKey: iss.issuer.IssuerKey()})
			delete(m.managed, n)
		}
	}
	if len(gone) > 0 && m.cache != nil {
		m.cache.RemoveManaged(gone)
	}
	byIssuer := map[*acmeIssuer][]string{}
	for n, iss := range want {
		if _, ok := m.managed[n]; !ok {
			m.managed[n] = iss
			byIssuer[iss] = append(byIssuer[iss], n)
		}
	}
	for iss, names := range byIssuer {
		m.log.Info("managing certificates", zap.Strings("names", names), zap.String("ca", iss.key.ca))
		// ManageAsync only fails on names it cannot take at all; the
		// outcome of each order is logged by certmagic as it goes.
		if err := iss.magic.ManageAsync(m.ctx, names); err != nil {
			m.log.Error("cannot manage certificates", zap.Strings("names", names), zap.Error(err))
		}
	}
}

// handleHTTPChallenge answers an ACME HTTP-01 validation request for a
// name one of the issuers is proving, and reports whether it did.
func (m *acmeManager) handleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !certmagic.LooksLikeHTTPChallenge(r) {
		return false
	}
	m.mu.Lock()
	issuers := make([]*acmeIssuer, 0, len(m.issuers))
	for _, iss := range m.issuers {
		issuers = append(issuers, iss)
	}
	m.mu.Unlock()
	for _, iss := range issuers {
		if iss.issuer.HandleHTTPChallenge(w, r) {
			return true
		}
	}
	return false
}

// close stops orders in progress, the renewal loop and the rate limiters.
func (m *acmeManager) close() {
	m.cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cache != nil {
		m.cache.Stop()
	}
	for _, iss := range m.issuers {
		if iss.limit != nil {
			iss.limit.Stop()
		}
	}
}

// acmeCert is an ACME site's certificate source.
type acmeCert struct {
	iss *acmeIssuer
	// name is served to clients that send no SNI.
	name string
	// names are the names to manage (tls auto); none for on-demand.
	names []string
}

func (c *acmeCert) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" && c.name != "" {
		h := *hello
		h.ServerName = c.name
		hello = &h
	}
	return c.iss.magic.GetCertificate(hello)
}

// acmeALPNConfig is the TLS config of a handshake that offers only
// acme-tls/1: a TLS-ALPN-01 validation, answered with certmagic's
// challenge certificate and without asking for a client certificate.
func acmeALPNConfig(t *hostTable) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{acmez.ACMETLS1Protocol},
		GetCertificate: t.certificate,
	}
}

var _ certSource = (*acmeCert)(nil)
