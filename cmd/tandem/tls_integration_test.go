package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCA signs server certificates for the TLS integration tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "integration CA"},
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
	return &testCA{cert: cert, key: key, pool: pool}
}

// writePair writes a certificate for name and its key to the files
// given (key first, as certbot swaps its live/ links) and returns the
// certificate's serial.
func (ca *testCA) writePair(t *testing.T, certPath, keyPath, name string) *big.Int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	writeFile(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	return serial
}

// serialAt handshakes with addr and returns the served leaf's serial.
func serialAt(t *testing.T, addr, sni string) *big.Int {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// waitSerial polls addr until it serves the certificate with serial,
// or fails at the deadline.
func waitSerial(t *testing.T, addr, sni string, serial *big.Int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := serialAt(t, addr, sni)
		if got.Cmp(serial) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still serves serial %v after %v, want %v", addr, got, d, serial)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsGet fetches url over HTTPS trusting roots, and checks HTTP/2 was
// negotiated.
func tlsGet(t *testing.T, roots *x509.CertPool, sni, url string) (int, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: sni}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 {
		t.Errorf("GET %s: %s, want HTTP/2", url, resp.Proto)
	}
	return resp.StatusCode, string(b)
}

const manualTLSConf = `
tls_storage {{DIR}}/tls;
site a.test {
    listen 127.0.0.1:0;
    tls live/a.test/fullchain.pem live/a.test/privkey.pem;
    return 200 "secure";
}
`

// certbot renews the files in place and runs a reload hook: SIGHUP makes
// tandem serve the new certificate; a broken renewal is logged and the
// last good certificate keeps serving.
func TestTLS_SIGHUPPicksUpRenewedCertificate(t *testing.T) {
	ca := newTestCA(t)
	certPath := func(dir string) string { return filepath.Join(dir, "live/a.test/fullchain.pem") }
	keyPath := func(dir string) string { return filepath.Join(dir, "live/a.test/privkey.pem") }
	var first *big.Int
	in := startTandem(t, manualTLSConf, func(dir string) {
		first = ca.writePair(t, certPath(dir), keyPath(dir), "a.test")
	})
	addr := in.addrs[0]
	if code, body := tlsGet(t, ca.pool, "a.test", "https://"+addr+"/"); code != 200 || body != "secure" {
		t.Fatalf("got %d %q", code, body)
	}
	if got := serialAt(t, addr, "a.test"); got.Cmp(first) != 0 {
		t.Fatalf("serving serial %v, want %v", got, first)
	}

	renewed := ca.writePair(t, certPath(in.dir), keyPath(in.dir), "a.test")
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, addr, "a.test", renewed, 10*time.Second)

	writeFile(t, keyPath(in.dir), "not a key\n")
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	in.waitLog("still serving the previous config", 10*time.Second)
	if got := serialAt(t, addr, "a.test"); got.Cmp(renewed) != 0 {
		t.Errorf("after a broken renewal: serial %v, want the last good %v", got, renewed)
	}
	if !strings.Contains(in.logText(), "privkey.pem") {
		t.Errorf("the log does not name the broken key file:\n%s", in.logText())
	}
}

const internalTLSConf = `
tls_storage {{DIR}}/state/tls;
site localhost {
    listen 127.0.0.1:0;
    listen 127.0.0.2:0 http;
    tls internal;
    hsts 1d;
    return 200 "internal";
}
`

// tls internal end to end: `tandem ca` prints the root the served leaf
// chains to, the plain address redirects to HTTPS, files get private
// modes, and a restart keeps the CA and the leaf.
func TestTLS_InternalCA_TrustedThroughTandemCA(t *testing.T) {
	in := startTandem(t, internalTLSConf, nil)
	tlsAddr, plainAddr := in.addrs[0], in.addrs[1] // sorted: 127.0.0.1 first
	rootPEM, stderr := runCA(t, in.conf)
	storage := filepath.Join(in.dir, "state/tls")
	if !strings.Contains(stderr, filepath.Join(storage, "pki/root.crt")) || strings.Contains(stderr, "created") {
		t.Errorf("tandem ca stderr %q: want the existing root's path", stderr)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("tandem ca printed no PEM certificate:\n%s", rootPEM)
	}
	if code, body := tlsGet(t, roots, "localhost", "https://"+tlsAddr+"/"); code != 200 || body != "internal" {
		t.Fatalf("got %d %q", code, body)
	}
	serial := serialAt(t, tlsAddr, "localhost")

	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	r := do(t, client(), "GET", "http://"+plainAddr+"/a?b=c", map[string]string{"Host": "localhost"})
	if want := "https://localhost:" + tlsPort + "/a?b=c"; r.status != http.StatusPermanentRedirect || r.header.Get("Location") != want {
		t.Errorf("plain address: %d %q, want 308 %q", r.status, r.header.Get("Location"), want)
	}

	for path, want := range map[string]os.FileMode{
		storage:                   0o700 | os.ModeDir,
		storage + "/pki":          0o700 | os.ModeDir,
		storage + "/pki/root.key": 0o600,
	} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	keys, _ := filepath.Glob(storage + "/pki/issued/*.key")
	for _, k := range keys {
		if fi, _ := os.Stat(k); fi.Mode() != 0o600 {
			t.Errorf("%s: %v, want 0600", k, fi.Mode())
		}
	}
	if len(keys) != 1 {
		t.Errorf("issued keys %v, want one", keys)
	}

	if code := in.stop(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	again := startArgs(t, in.dir, in.conf, "run", "-c", in.conf, "--pid", filepath.Join(in.dir, "tandem2.pid"))
	rootPEM2, _ := runCA(t, in.conf)
	if !bytes.Equal(rootPEM, rootPEM2) {
		t.Error("a restart made a new CA")
	}
	if code, _ := tlsGet(t, roots, "localhost", "https://"+again.addrs[0]+"/"); code != 200 {
		t.Errorf("after restart: %d", code)
	}
	if got := serialAt(t, again.addrs[0], "localhost"); got.Cmp(serial) != 0 {
		t.Errorf("a restart issued a new leaf (%v, was %v) though the stored one is fresh", got, serial)
	}
}

// runCA runs `tandem ca -c conf` and returns its stdout and stderr.
func runCA(t *testing.T, conf string) ([]byte, string) {
	t.Helper()
	cmd := exec.Command(binPath, "ca", "-c", conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tandem ca: %v\n%s", err, stderr.String())
	}
	return stdout.Bytes(), stderr.String()
}

// `tandem ca` creates the CA when no server made it yet, and prints only
// PEM on stdout, so `tandem ca > root.pem` is a file to trust.
func TestTLS_TandemCACreatesTheCA(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tandem.conf")
	writeFile(t, conf, "tls_storage ca-store;\nsite localhost { listen 127.0.0.1:0; tls internal; }\n")
	out, stderr := runCA(t, conf)
	if !strings.Contains(stderr, "created") || !strings.Contains(stderr, filepath.Join(dir, "ca-store/pki/root.crt")) {
		t.Errorf("stderr %q", stderr)
	}
	blk, rest := pem.Decode(out)
	if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("stdout is not exactly one PEM certificate:\n%s", out)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !cert.IsCA || cert.Subject.CommonName != "tandem local CA" {
		t.Errorf("root %+v (%v)", cert.Subject, err)
	}
	if again, _ := runCA(t, conf); !bytes.Equal(again, out) {
		t.Error("a second tandem ca printed another CA")
	}
}

// `tandem check` reports TLS mistakes with their position.
func TestTLS_CheckReportsTLSErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tandem.conf")
	writeFile(t, conf, `site a.test {
    listen 127.0.0.1:8443;
    tls auto me;
}
site b.test {
    listen 127.0.0.1:8443;
    tls missing.crt missing.key;
}
`)
	out, err := exec.Command(binPath, "check", "-c", conf).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{conf + ":3:14: tls: expected an email address", conf + ":7:9: tls certificate", conf + ":7:21: tls key"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
