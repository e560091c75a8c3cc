package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// ACME end to end: the real binary against Pebble (acme_harness_test.go).
// Each test has its own Pebble, storage and ports, so they run in
// parallel. Pebble validates at 127.0.0.1:HTTPPort (HTTP-01) or
// 127.0.0.1:TLSPort (TLS-ALPN-01), so those are set to tandem's plain and
// TLS ports.

const (
	// issueWait bounds getting a first certificate; Pebble (no VA sleep,
	// no Retry-After) issues in about a second.
	issueWait = 60 * time.Second
	// staticBody is the file the ACME sites serve.
	staticBody = "hello over ACME\n"
)

// acmeTop is the top-level ACME block pointing tandem at p.
func acmeTop(p *pebble, challenges string) string {
	return fmt.Sprintf(`
tls_storage {{DIR}}/tls;
acme_ca %s;
acme_ca_root %s;
acme_challenges %s;
acme_email admin@tandem.test;
`, p.DirectoryURL, p.RootFile, challenges)
}

// autoSite is a `tls auto` site for a.tandem.test and www.tandem.test
// serving {{DIR}}/www, with a plain HTTP listener.
func autoSite(tlsPort, httpPort int) string {
	return fmt.Sprintf(`
site a.tandem.test www.tandem.test {
    listen 127.0.0.1:%d;
    listen 127.0.0.1:%d http;
    tls auto admin@tandem.test;
    root {{DIR}}/www;
}
`, tlsPort, httpPort)
}

func writeWWW(dir string) {
	_ = os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "www", "hello.txt"), []byte(staticBody), 0o644)
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitIssued polls addr until a handshake with sni presents a certificate
// for sni that verifies against Pebble's issuer root, and returns it. It
// fails at the deadline with the last error, or as soon as tandem exits.
func waitIssued(t *testing.T, in *instance, p *pebble, addr, sni string, d time.Duration) *x509.Certificate {
	t.Helper()
	roots := p.IssuerRoots()
	deadline := time.Now().Add(d)
	for {
		leaf, err := servedCert(addr, sni, roots)
		if err == nil {
			return leaf
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Pebble-issued certificate for %s within %v; last: %v", sni, d, err)
		}
		select {
		case <-in.exited:
			t.Fatalf("tandem exited while waiting for a certificate for %s (last: %v)", sni, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkPrivateModes fails for any file or directory under root with group
// or other permission bits. certmagic's lock files (locks/, 0644 in
// certmagic, present only while an order runs and holding no secret) are
// left out so the check cannot race a renewal.
func checkPrivateModes(t *testing.T, root string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "locks" {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want no group/other bits", path, fi.Mode())
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	if n < 2 {
		t.Errorf("%s holds %d entries; expected the ACME account and certificates", root, n)
	}
}

// storedNames is every path under root containing name.
func storedNames(t *testing.T, root, name string) []string {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), name) {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// checkAutoSite is what a tls auto site must do once its certificates are
// issued: both names verify, the static file comes over HTTPS, the plain
// listener redirects, and storage is private.
func checkAutoSite(t *testing.T, in *instance, p *pebble, tlsPort, httpPort int) *x509.Certificate {
	t.Helper()
	addr := loopback(tlsPort)
	start := time.Now()
	leaf := waitIssued(t, in, p, addr, "a.tandem.test", issueWait)
	waitIssued(t, in, p, addr, "www.tandem.test", issueWait)
	t.Logf("certificates for both names served %v after tandem started (serial %v, %v–%v)",
		time.Since(start).Round(time.Millisecond), leaf.SerialNumber, leaf.NotBefore, leaf.NotAfter)

	if code, body := tlsGet(t, p.IssuerRoots(), "a.tandem.test", "https://"+addr+"/hello.txt"); code != 200 || body != staticBody {
		t.Errorf("HTTPS GET /hello.txt: %d %q, want 200 %q", code, body, staticBody)
	}
	r := do(t, client(), "GET", "http://"+loopback(httpPort)+"/hello.txt?x=1", map[string]string{"Host": "a.tandem.test"})
	if want := fmt.Sprintf("https://a.tandem.test:%d/hello.txt?x=1", tlsPort); r.status != http.StatusPermanentRedirect || r.header.Get("Location") != want {
		t.Errorf("plain HTTP GET: %d %q, want 308 %q", r.status, r.header.Get("Location"), want)
	}

	storage := filepath.Join(in.dir, "tls")
	if len(storedNames(t, filepath.Join(storage, "acme"), "a.tandem.test")) == 0 {
		t.Errorf("no a.tandem.test entry under %s/acme", storage)
	}
	checkPrivateModes(t, storage)
	return leaf
}

// tls auto with HTTP-01 only: Pebble fetches the challenge from tandem's
// plain HTTP listener, which answers it before redirecting to HTTPS.
func TestACME_HTTP01(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 2)
	tlsPort, httpPort := ports[0], ports[1]
	p := startPebble(t, pebbleOptions{HTTPPort: httpPort}) // TLSPort: unused, so TLS-ALPN-01 cannot pass
	in := startTandem(t, acmeTop(p, "http-01")+autoSite(tlsPort, httpPort), writeWWW)
	checkAutoSite(t, in, p, tlsPort, httpPort)

	logs := p.Logs()
	if !strings.Contains(logs, "Attempting to validate w/ HTTP: http://a.tandem.test:") {
		t.Errorf("Pebble never validated a.tandem.test by HTTP-01")
	}
	// A TLS-ALPN-01 attempt would fail (nothing on Pebble's tlsPort) and
	// invalidate the authorization.
	if strings.Contains(logs, "set INVALID") {
		t.Errorf("an authorization failed: was a challenge other than http-01 tried?")
	}
}

// tls auto with TLS-ALPN-01 only: Pebble handshakes with tandem's TLS
// listener (ALPN acme-tls/1); HTTP-01 is never tried.
func TestACME_TLSALPN01(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 2)
	tlsPort, httpPort := ports[0], ports[1]
	p := startPebble(t, pebbleOptions{TLSPort: tlsPort}) // HTTPPort: unused
	in := startTandem(t, acmeTop(p, "tls-alpn-01")+autoSite(tlsPort, httpPort), writeWWW)
	checkAutoSite(t, in, p, tlsPort, httpPort)

	logs := p.Logs()
	if strings.Contains(logs, "Attempting to validate w/ HTTP") {
		t.Errorf("Pebble was asked to validate by HTTP-01 though acme_challenges is tls-alpn-01")
	}
	if strings.Contains(logs, "set INVALID") {
		t.Errorf("an authorization failed")
	}
}

// Short-lived certificates are renewed in the background
// (tls_renew_check), and the new one is served without a reload.
func TestACME_Renewal(t *testing.T) {
	t.Parallel()
	const validity = 40 * time.Second
	ports := freePorts(t, 2)
	tlsPort, httpPort := ports[0], ports[1]
	p := startPebble(t, pebbleOptions{HTTPPort: httpPort, TLSPort: tlsPort, Validity: validity})
	conf := acmeTop(p, "http-01 tls-alpn-01") + "tls_renew_check 1s;\n" + autoSite(tlsPort, httpPort)
	in := startTandem(t, conf, writeWWW)
	addr := loopback(tlsPort)
	first := waitIssued(t, in, p, addr, "a.tandem.test", issueWait)
	if got := first.NotAfter.Sub(first.NotBefore) + time.Second; got != validity {
		t.Fatalf("first certificate valid for %v, want %v (Pebble profile)", got, validity)
	}

	roots := p.IssuerRoots()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		leaf, err := servedCert(addr, "a.tandem.test", roots)
		switch {
		case err != nil:
			last = err.Error()
		case leaf.SerialNumber.Cmp(first.SerialNumber) != 0:
			t.Logf("renewed: serial %v -> %v, %v after the first was issued (first expires at +%v)",
				first.SerialNumber, leaf.SerialNumber, time.Since(first.NotBefore).Round(time.Second), validity)
			if strings.Contains(p.Logs(), "is a replacement of") {
				t.Log("the renewal order named the old certificate (ARI replaces)")
			}
			if code, body := tlsGet(t, roots, "a.tandem.test", "https://"+addr+"/hello.txt"); code != 200 || body != staticBody {
				t.Errorf("after renewal, HTTPS GET: %d %q", code, body)
			}
			return
		default:
			last = fmt.Sprintf("still the first certificate (serial %v, expires %v)", first.SerialNumber, first.NotAfter)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewed certificate 90s after the first; last: %s", last)
		}
		select {
		case <-in.exited:
			t.Fatalf("tandem exited while waiting for renewal (last: %s)", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// askServer approves only ok.tandem.test and records every asked name.
type askServer struct {
	mu    sync.Mutex
	asked []string
}

func (a *askServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := r.URL.Query().Get("domain")
	a.mu.Lock()
	a.asked = append(a.asked, r.URL.Path+"?domain="+d)
	a.mu.Unlock()
	if r.URL.Path == "/check" && d == "ok.tandem.test" {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusForbidden)
}

func (a *askServer) saw(q string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.asked {
		if s == q {
			return true
		}
	}
	return false
}

func (a *askServer) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.asked, ", ")
}

// tls on_demand: a certificate is obtained at the first handshake for a
// name the ask URL approves; a refused name fails the handshake and
// never reaches the CA.
func TestACME_OnDemand(t *testing.T) {
	t.Parallel()
	ask := &askServer{}
	asrv := httptest.NewServer(ask)
	t.Cleanup(asrv.Close)
	tlsPort := freePorts(t, 1)[0]
	p := startPebble(t, pebbleOptions{TLSPort: tlsPort})
	conf := acmeTop(p, "tls-alpn-01") + fmt.Sprintf(`
site _ {
    listen 127.0.0.1:%d;
    tls on_demand ask %s/check;
    return 200 "on demand";
}
`, tlsPort, asrv.URL)
	in := startTandem(t, conf, nil)
	addr := loopback(tlsPort)

	leaf := waitIssued(t, in, p, addr, "ok.tandem.test", issueWait)
	t.Logf("on-demand certificate serial %v", leaf.SerialNumber)
	if !ask.saw("/check?domain=ok.tandem.test") {
		t.Errorf("the ask URL was not asked about ok.tandem.test (asked: %s)", ask)
	}
	if code, body := tlsGet(t, p.IssuerRoots(), "ok.tandem.test", "https://"+addr+"/"); code != 200 || body != "on demand" {
		t.Errorf("GET https://ok.tandem.test/: %d %q", code, body)
	}

	if leaf, err := servedCert(addr, "no.tandem.test", p.IssuerRoots()); leaf != nil || err == nil {
		t.Errorf("handshake for the refused no.tandem.test served %v (err %v), want a handshake error", leaf, err)
	}
	if !ask.saw("/check?domain=no.tandem.test") {
		t.Errorf("the ask URL was not asked about no.tandem.test (asked: %s)", ask)
	}
	if found := storedNames(t, filepath.Join(in.dir, "tls"), "no.tandem.test"); len(found) > 0 {
		t.Errorf("storage holds %v for the refused name", found)
	}
	if strings.Contains(p.Logs(), "no.tandem.test") {
		t.Errorf("Pebble was asked about the refused name")
	}
}

// A restart serves the stored certificate: no new order, and the CA need
// not even be up.
func TestACME_RestartKeepsCertificate(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 2)
	tlsPort, httpPort := ports[0], ports[1]
	p := startPebble(t, pebbleOptions{HTTPPort: httpPort, TLSPort: tlsPort})
	in := startTandem(t, acmeTop(p, "http-01 tls-alpn-01")+autoSite(tlsPort, httpPort), writeWWW)
	addr := loopback(tlsPort)
	first := waitIssued(t, in, p, addr, "a.tandem.test", issueWait)
	waitIssued(t, in, p, addr, "www.tandem.test", issueWait)
	roots := p.IssuerRoots()
	if code := in.stop(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	p.Stop()

	again := startArgs(t, in.dir, in.conf, "run", "-c", in.conf, "--pid", filepath.Join(in.dir, "tandem2.pid"))
	// The CA is down, so a verifying certificate can only be the stored one.
	leaf := waitIssued(t, again, p, addr, "a.tandem.test", 10*time.Second)
	if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("after restart: serial %v, want the stored %v", leaf.SerialNumber, first.SerialNumber)
	}
	if code, body := tlsGet(t, roots, "a.tandem.test", "https://"+addr+"/hello.txt"); code != 200 || body != staticBody {
		t.Errorf("after restart, HTTPS GET: %d %q", code, body)
	}
}

// A reload that adds a name to a tls auto site starts an order for it,
// while the certificate already issued keeps serving; a reload with a
// broken acme_ca keeps the running config.
func TestACME_ReloadAddsName(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 2)
	tlsPort, httpPort := ports[0], ports[1]
	p := startPebble(t, pebbleOptions{HTTPPort: httpPort})
	in := startTandem(t, acmeTop(p, "http-01")+autoSite(tlsPort, httpPort), writeWWW)
	addr := loopback(tlsPort)
	first := waitIssued(t, in, p, addr, "a.tandem.test", issueWait)
	if _, err := servedCert(addr, "new.tandem.test", p.IssuerRoots()); err == nil {
		t.Fatal("new.tandem.test has a certificate before it is in the config")
	}

	broken := strings.Replace(acmeTop(p, "http-01"), p.DirectoryURL, "http://plain.invalid/dir", 1) + autoSite(tlsPort, httpPort)
	writeFile(t, in.conf, strings.ReplaceAll(broken, "{{DIR}}", in.dir))
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	in.waitLog("acme_ca: expected an https:// ACME directory URL", 10*time.Second)

	grown := strings.Replace(autoSite(tlsPort, httpPort), "www.tandem.test", "www.tandem.test new.tandem.test", 1)
	writeFile(t, in.conf, strings.ReplaceAll(acmeTop(p, "http-01")+grown, "{{DIR}}", in.dir))
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitIssued(t, in, p, addr, "new.tandem.test", issueWait)
	again := waitIssued(t, in, p, addr, "a.tandem.test", issueWait)
	if again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("a.tandem.test's certificate changed across the reload (%v -> %v); it should have been kept", first.SerialNumber, again.SerialNumber)
	}
}

// The documented pairing: tls auto with http3 on. The certificate Pebble
// issued is served over QUIC too (quic-go fills in the handshake's
// addresses that certmagic logs with).
func TestACME_OverHTTP3(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 2)
	tlsPort, httpPort := ports[0], ports[1]
	p := startPebble(t, pebbleOptions{HTTPPort: httpPort})
	site := strings.Replace(autoSite(tlsPort, httpPort), "tls auto admin@tandem.test;", "tls auto admin@tandem.test;\n    http3 on;", 1)
	in := startTandem(t, acmeTop(p, "http-01")+site, writeWWW)
	leaf := waitIssued(t, in, p, loopback(tlsPort), "a.tandem.test", issueWait)

	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: p.IssuerRoots(), ServerName: "a.tandem.test"}}
	defer tr.Close()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + loopback(tlsPort) + "/hello.txt")
	if err != nil {
		t.Fatalf("HTTP/3 GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != staticBody || resp.Proto != "HTTP/3.0" {
		t.Fatalf("HTTP/3 GET: %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("QUIC served serial %v, TCP %v", got, leaf.SerialNumber)
	}
}
