package edge

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/static"
)

// testPKI is a CA made in the test, issuing server and client
// certificates with crypto/x509.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  string
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testPKI{cert: cert, key: key, pool: pool, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue returns a PEM certificate and key for names, for a server or (with
// client) for a client; the CommonName is the first name.
func (p *testPKI) issue(t *testing.T, client bool, names ...string) (certPEM, keyPEM string) {
	t.Helper()
	key := newKey(t)
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// files returns the config-file map entries for a server certificate
// NAME.crt and NAME.key covering names.
func (p *testPKI) files(t *testing.T, file string, names ...string) map[string]string {
	c, k := p.issue(t, false, names...)
	return map[string]string{file + ".crt": c, file + ".key": k}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// startTLS starts a server for config and stops it when the test ends.
func startTLS(t *testing.T, config string, files map[string]string) (*Server, string) {
	t.Helper()
	s, dir := newTestServer(t, config, files)
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	return s, dir
}

// httpsClient trusts roots, sends serverName as SNI and never follows
// redirects; mod may change its TLS config.
func httpsClient(t *testing.T, roots *x509.CertPool, serverName string, mod func(*tls.Config)) *http.Client {
	tc := &tls.Config{RootCAs: roots, ServerName: serverName}
	if mod != nil {
		mod(tc)
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type tlsResult struct {
	resp *http.Response
	body string
}

func tlsFetch(t *testing.T, c *http.Client, url, host string) (tlsResult, error) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return tlsResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return tlsResult{resp: resp, body: string(b)}, err
}

func mustFetch(t *testing.T, c *http.Client, url, host string) tlsResult {
	t.Helper()
	r, err := tlsFetch(t, c, url, host)
	if err != nil {
		t.Fatalf("GET %s (Host %q): %v", url, host, err)
	}
	return r
}

// servedCert handshakes with addr, sending sni, and returns the leaf the
// server presented (unverified: the test looks at which one it was).
func servedCert(t *testing.T, addr, sni string) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake with %s (SNI %q): %v", addr, sni, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

const tlsSiteConf = `
tls_storage {{DIR}}/tls;
site a.test {
    listen 127.0.0.1:0;
    listen 127.0.0.2:0 http;
    tls {{DIR}}/a.crt {{DIR}}/a.key;
    hsts 365d include_subdomains;
    return 200 "a over $scheme";
}
`

// A site with `tls CERT KEY` serves HTTPS with that certificate, TLS 1.3
// first and HTTP/2 by ALPN, with the site's HSTS header.
func TestTLS_ManualCertificate_HTTPS_HTTP2_HSTS(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	s, _ := startTLS(t, tlsSiteConf, pki.files(t, "a", "a.test"))
	r := mustFetch(t, httpsClient(t, pki.pool, "a.test", nil), "https://"+s.boundAddr("127.0.0.1:0")+"/", "a.test")
	if r.resp.StatusCode != 200 || r.body != "a over https" {
		t.Fatalf("got %d %q", r.resp.StatusCode, r.body)
	}
	if r.resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2 negotiated by ALPN", r.resp.Proto)
	}
	if r.resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want 1.3", r.resp.TLS.Version)
	}
	if got := r.resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS %q", got)
	}
}

// HTTP/1.1 stays available to clients that do not offer h2.
func TestTLS_HTTP1ClientsStillServed(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	s, _ := startTLS(t, tlsSiteConf, pki.files(t, "a", "a.test"))
	c := httpsClient(t, pki.pool, "a.test", func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	r := mustFetch(t, c, "https://"+s.boundAddr("127.0.0.1:0")+"/", "")
	if r.resp.ProtoMajor != 1 || r.body != "a over https" {
		t.Errorf("got %s %q", r.resp.Proto, r.body)
	}
}

// Safe defaults: TLS 1.0/1.1 and CBC suites are refused; TLS 1.2 gets an
// ECDHE AEAD suite.
func TestTLS_RefusesOldProtocolsAndWeakCiphers(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	s, _ := startTLS(t, tlsSiteConf, pki.files(t, "a", "a.test"))
	addr := s.boundAddr("127.0.0.1:0")
	dial := func(mod func(*tls.Config)) (*tls.Conn, error) {
		cfg := &tls.Config{RootCAs: pki.pool, ServerName: "a.test"}
		mod(cfg)
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	}
	if c, err := dial(func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	weak := func(c *tls.Config) {
		c.MaxVersion = tls.VersionTLS12
		c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	}
	if c, err := dial(weak); err == nil {
		c.Close()
		t.Error("a CBC cipher suite was accepted")
	}
	c, err := dial(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	defer c.Close()
	if st := c.ConnectionState(); st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 &&
		st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 && st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("TLS 1.2 suite %s, want ECDHE with an AEAD", tls.CipherSuiteName(st.CipherSuite))
	}
}

// SNI picks the certificate among the sites of one address with the
// Host rules (exact, wildcard, default); the Host header then picks the
// site.
func TestTLS_SNISelectsCertificate(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	files := merge(pki.files(t, "a", "a.test"), pki.files(t, "b", "*.b.test"), pki.files(t, "d", "d.test"))
	s, _ := startTLS(t, `
tls_storage {{DIR}}/tls;
site a.test { listen 127.0.0.1:0; tls {{DIR}}/a.crt {{DIR}}/a.key; return 200 "a"; }
site *.b.test { listen 127.0.0.1:0; tls {{DIR}}/b.crt {{DIR}}/b.key; return 200 "b"; }
site d.test { listen 127.0.0.1:0 default; tls {{DIR}}/d.crt {{DIR}}/d.key; return 200 "d"; }
`, files)
	addr := s.boundAddr("127.0.0.1:0")
	for sni, want := range map[string]string{"a.test": "a.test", "A.Test": "a.test", "x.b.test": "*.b.test", "other.test": "d.test", "": "d.test"} {
		if got := servedCert(t, addr, sni).Subject.CommonName; got != want {
			t.Errorf("SNI %q: served %q, want %q", sni, got, want)
		}
	}
	for host, want := range map[string]string{"a.test": "a", "x.b.test": "b"} {
		r := mustFetch(t, httpsClient(t, pki.pool, host, nil), "https://"+addr+"/", host)
		if r.body != want {
			t.Errorf("Host %s: got %q, want %q", host, r.body, want)
		}
	}
}

// A TLS site's plain address answers 308 to the HTTPS address with the
// same host, path and query, naming the port the TLS socket got; no
// HSTS on plain HTTP.
func TestTLS_PlainAddressRedirects(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	s, _ := startTLS(t, tlsSiteConf, pki.files(t, "a", "a.test"))
	_, tlsPort, _ := net.SplitHostPort(s.boundAddr("127.0.0.1:0"))
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for host, want := range map[string]string{
		"a.test":      "https://a.test:" + tlsPort + "/p/a%20b?q=1&r",
		"a.test:8080": "https://a.test:" + tlsPort + "/p/a%20b?q=1&r",
		"[::1]:80":    "https://[::1]:" + tlsPort + "/p/a%20b?q=1&r",
	} {
		r := mustFetch(t, c, "http://"+s.boundAddr("127.0.0.2:0")+"/p/a%20b?q=1&r", host)
		if r.resp.StatusCode != http.StatusPermanentRedirect || r.resp.Header.Get("Location") != want {
			t.Errorf("Host %s: got %d Location %q, want 308 %q", host, r.resp.StatusCode, r.resp.Header.Get("Location"), want)
		}
		if h := r.resp.Header.Get("Strict-Transport-Security"); h != "" {
			t.Errorf("HSTS on a plain HTTP redirect: %q", h)
		}
	}
}

// The redirect names no port when the HTTPS address is on 443, and
// brackets IPv6 literals (handler only: no socket on 443 needed).
func TestTLS_RedirectToPort443(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	s, _ := newTestServer(t, `
tls_storage {{DIR}}/tls;
site a.test { listen 127.0.0.1:443 127.0.0.1:80; tls {{DIR}}/a.crt {{DIR}}/a.key; }
`, pki.files(t, "a", "a.test"))
	for host, want := range map[string]string{"a.test": "https://a.test/x?y", "[::1]": "https://[::1]/x?y", "": "https://a.test/x?y"} {
		w := get(s, "127.0.0.1:80", "POST", "/x?y", map[string]string{"Host": host})
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != want {
			t.Errorf("Host %q: got %d %q, want 308 %q", host, w.Code, w.Header().Get("Location"), want)
		}
	}
}

// http_redirect off: the plain address serves the site itself, without
// HSTS.
func TestTLS_HTTPRedirectOff_ServesPlain(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	s, _ := startTLS(t, strings.Replace(tlsSiteConf, "hsts", "http_redirect off; hsts", 1), pki.files(t, "a", "a.test"))
	r := mustFetch(t, &http.Client{Timeout: 5 * time.Second}, "http://"+s.boundAddr("127.0.0.2:0")+"/", "a.test")
	if r.resp.StatusCode != 200 || r.body != "a over http" || r.resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("got %d %q HSTS %q", r.resp.StatusCode, r.body, r.resp.Header.Get("Strict-Transport-Security"))
	}
}

// tls_client_ca: a client without a certificate, or with one from
// another CA, is refused; one with a certificate from the CA is served.
func TestTLS_ClientCertificates(t *testing.T) {
	pki, clients, stranger := newTestPKI(t, "test CA"), newTestPKI(t, "clients CA"), newTestPKI(t, "other CA")
	files := merge(pki.files(t, "a", "a.test"), map[string]string{"clients.pem": clients.pem})
	s, _ := startTLS(t, `
tls_storage {{DIR}}/tls;
site a.test { listen 127.0.0.1:0; tls {{DIR}}/a.crt {{DIR}}/a.key; tls_client_ca {{DIR}}/clients.pem; return 200 "hello $remote_addr"; }
`, files)
	url := "https://" + s.boundAddr("127.0.0.1:0") + "/"
	withCert := func(p *testPKI) func(*tls.Config) {
		c, k := p.issue(t, true, "client-1")
		pair, err := tls.X509KeyPair([]byte(c), []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		return func(cfg *tls.Config) { cfg.Certificates = []tls.Certificate{pair} }
	}
	for name, mod := range map[string]func(*tls.Config){"none": nil, "other CA": withCert(stranger)} {
		if r, err := tlsFetch(t, httpsClient(t, pki.pool, "a.test", mod), url, ""); err == nil {
			t.Errorf("client certificate %s: served %d %q, want a failed handshake", name, r.resp.StatusCode, r.body)
		}
	}
	r := mustFetch(t, httpsClient(t, pki.pool, "a.test", withCert(clients)), url, "")
	if r.resp.StatusCode != 200 || len(r.resp.TLS.PeerCertificates) == 0 {
		t.Errorf("with a client certificate: %d %q", r.resp.StatusCode, r.body)
	}
}

// tls internal: the leaf verifies against the root LocalCARoot returns,
// for host names and IP addresses; keys are 0600 and directories 0700;
// a second server reuses the CA and the stored leaf.
func TestTLS_Internal(t *testing.T) {
	const config = `
tls_storage {{DIR}}/tls;
site localhost 127.0.0.1 { listen 127.0.0.1:0; tls internal; return 200 "internal"; }
`
	s, dir := startTLS(t, config, nil)
	storage := filepath.Join(dir, "tls")
	rootPath, rootPEM, created, err := LocalCARoot(storage)
	if err != nil || created {
		t.Fatalf("LocalCARoot: created %v, err %v (the server made the CA already)", created, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("no PEM in the root")
	}
	addr := s.boundAddr("127.0.0.1:0")
	for _, sni := range []string{"localhost", "127.0.0.1"} {
		if r := mustFetch(t, httpsClient(t, roots, sni, nil), "https://"+addr+"/", ""); r.body != "internal" {
			t.Errorf("%s: %q", sni, r.body)
		}
	}
	leaf := servedCert(t, addr, "localhost")
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d != leafLifetime {
		t.Errorf("leaf valid for %v, want %v", d, leafLifetime)
	}
	if root, _ := x509.ParseCertificate(pemDER(t, rootPEM)); root.Subject.CommonName != caCommonName ||
		root.NotAfter.Before(time.Now().AddDate(9, 11, 0)) {
		t.Errorf("root %q until %v, want %q for 10 years", root.Subject.CommonName, root.NotAfter, caCommonName)
	}
	pki := filepath.Join(storage, "pki")
	modes := map[string]os.FileMode{storage: 0o700 | os.ModeDir, pki: 0o700 | os.ModeDir, filepath.Join(pki, "issued"): 0o700 | os.ModeDir, filepath.Join(pki, "root.key"): 0o600}
	keys, _ := filepath.Glob(filepath.Join(pki, "issued", "*.key"))
	if len(keys) != 1 {
		t.Fatalf("issued keys %v, want one", keys)
	}
	modes[keys[0]] = 0o600
	for p, want := range modes {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (err %v), want %v", p, fi.Mode(), err, want)
		}
	}

	// A second server on the same storage: the same root, the same leaf.
	cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(strings.ReplaceAll(config, "{{DIR}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	s2 := newServerFor(t, cfg)
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Shutdown(t.Context()) })
	if again := servedCert(t, s2.boundAddr("127.0.0.1:0"), "localhost"); again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("a restart issued a new leaf instead of reusing the stored one")
	}
	if p2, pem2, _, _ := LocalCARoot(storage); p2 != rootPath || !bytes.Equal(pem2, rootPEM) {
		t.Error("the CA changed between starts")
	}
}

func newServerFor(t *testing.T, cfg *conf.Config) *Server {
	t.Helper()
	cache := static.NewCache(static.CacheConfig{})
	t.Cleanup(func() { cache.Close() })
	s, err := New(cfg, Options{FileCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pemDER(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	return blk.Bytes
}

// A stored internal leaf past half its life is replaced at load, and a
// running one at the first handshake past that point.
func TestTLS_InternalRenewsAtHalfLife(t *testing.T) {
	storage := t.TempDir()
	ca, _, err := openLocalCA(storage)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a.test"}
	old, err := ca.issue(names, time.Now().Add(-leafLifetime/2-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := ca.leaf(names, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Leaf.SerialNumber.Cmp(old.Leaf.SerialNumber) == 0 {
		t.Fatal("a leaf past half its life was reused at load")
	}
	if again, _ := ca.leaf(names, time.Now()); again.Leaf.SerialNumber.Cmp(fresh.Leaf.SerialNumber) != 0 {
		t.Fatal("a fresh stored leaf was not reused")
	}

	ic, err := newInternalCert(ca, names, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ic.certificate(nil)
	ic.renewAt.Store(time.Now().Add(-time.Second).UnixNano()) // as if half its life had passed
	after, _ := ic.certificate(nil)
	if after.Leaf.SerialNumber.Cmp(before.Leaf.SerialNumber) == 0 {
		t.Error("no renewal at the first handshake past half its life")
	}
	if next, _ := ic.certificate(nil); next != after {
		t.Error("renewed again right away")
	}
}

// A reload picks up new certificate files and can turn a plain address
// into a TLS one on the same socket; a reload whose certificate cannot be
// read fails and leaves the old one serving.
func TestTLS_Reload(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	plain := `site a.test { listen 127.0.0.1:0; return 200 "plain"; }`
	s, dir := startTLS(t, plain, pki.files(t, "a", "a.test"))
	addr := s.boundAddr("127.0.0.1:0")
	if r := mustFetch(t, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/", ""); r.body != "plain" {
		t.Fatalf("plain: %q", r.body)
	}
	withTLS := fmt.Sprintf(`tls_storage %s/tls;
site a.test { listen 127.0.0.1:0; tls %s/a.crt %s/a.key; return 200 "tls"; }`, dir, dir, dir)
	reload := func() error {
		cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(withTLS))
		if err != nil {
			t.Fatal(err)
		}
		return s.Reload(cfg)
	}
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if s.boundAddr("127.0.0.1:0") != addr {
		t.Fatal("the socket changed")
	}
	if r := mustFetch(t, httpsClient(t, pki.pool, "a.test", nil), "https://"+addr+"/", ""); r.body != "tls" {
		t.Fatalf("after reload: %q", r.body)
	}
	first := servedCert(t, addr, "a.test").SerialNumber

	for name, body := range pki.files(t, "a", "a.test") {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	second := servedCert(t, addr, "a.test").SerialNumber
	if second.Cmp(first) == 0 {
		t.Fatal("the reload kept serving the old certificate")
	}

	cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(withTLS))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.key"), []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(cfg); err == nil {
		t.Fatal("a reload with a broken key succeeded")
	}
	if got := servedCert(t, addr, "a.test").SerialNumber; got.Cmp(second) != 0 {
		t.Error("a failed reload changed the served certificate")
	}
}

// A wildcard TLS address and a specific one on the same port share one
// socket; each connection gets its own address's certificate.
func TestTLS_WildcardListenCoversSpecificAddress(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	port := strconv.Itoa(freePort(t))
	s, _ := startTLS(t, strings.ReplaceAll(`
tls_storage {{DIR}}/tls;
site specific.test { listen 127.0.0.1:PORT; tls {{DIR}}/s.crt {{DIR}}/s.key; return 200 "specific"; }
site wild.test { listen :PORT; tls {{DIR}}/w.crt {{DIR}}/w.key; return 200 "wild"; }
`, "PORT", port), merge(pki.files(t, "s", "specific.test"), pki.files(t, "w", "wild.test")))
	if got := s.Addrs(); len(got) != 1 {
		t.Fatalf("bound %v, want one wildcard socket", got)
	}
	// 127.0.0.2 is loopback on Linux but not the specific address.
	for ip, want := range map[string]string{"127.0.0.1": "specific.test", "127.0.0.2": "wild.test"} {
		if got := servedCert(t, net.JoinHostPort(ip, port), "").Subject.CommonName; got != want {
			t.Errorf("via %s: certificate %q, want %q", ip, got, want)
		}
	}
}

// A session resumed after a reload is checked against the new
// tls_client_ca: session tickets outlive reloads (the keys belong to the
// socket), so this pins that crypto/tls re-checks a resumed session's
// client chain against the ClientCAs of the config in force.
func TestTLS_ResumedSessionRecheckedAgainstNewClientCA(t *testing.T) {
	pki, clients, other := newTestPKI(t, "test CA"), newTestPKI(t, "clients CA"), newTestPKI(t, "other CA")
	const config = `
tls_storage {{DIR}}/tls;
site a.test { listen 127.0.0.1:0; tls {{DIR}}/a.crt {{DIR}}/a.key; tls_client_ca {{DIR}}/clients.pem; return 200 "ok"; }
`
	s, dir := startTLS(t, config, merge(pki.files(t, "a", "a.test"), map[string]string{"clients.pem": clients.pem}))
	addr := s.boundAddr("127.0.0.1:0")
	c, k := clients.issue(t, true, "client-1")
	pair, err := tls.X509KeyPair([]byte(c), []byte(k))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pki.pool, ServerName: "a.test", Certificates: []tls.Certificate{pair},
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	// roundTrip sends one HTTP/1.1 request on a new connection; reading
	// the response also takes in the TLS 1.3 session ticket.
	roundTrip := func() (resumed bool, err error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"); err != nil {
			return false, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if _, err := io.ReadAll(resp.Body); err != nil {
			return false, err
		}
		return conn.ConnectionState().DidResume, nil
	}
	if _, err := roundTrip(); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if resumed, err := roundTrip(); err != nil || !resumed {
		t.Fatalf("second connection: resumed %v, err %v; the test needs a resumed session", resumed, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "clients.pem"), []byte(other.pem), 0o600); err != nil {
		t.Fatal(err)
	}
	next, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(strings.ReplaceAll(config, "{{DIR}}", dir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(next); err != nil {
		t.Fatal(err)
	}
	if resumed, err := roundTrip(); err == nil {
		t.Errorf("a client of the removed CA was served after the reload (resumed %v)", resumed)
	}
}
