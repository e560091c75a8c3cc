package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// The ACME tests run Pebble (Let's Encrypt's test CA) and its
// pebble-challtestsrv as a DNS server, both built from the module pinned by
// go.mod's tool directives, so no network and no installed tools are
// needed. Pebble's VA resolves every name through challtestsrv, which
// answers 127.0.0.1 for any A query and nothing for AAAA; it then connects
// to 127.0.0.1:HTTPPort for HTTP-01 and 127.0.0.1:TLSPort for TLS-ALPN-01,
// whatever port the name's site listens on. Any name works (*.tandem.test
// by convention); none needs /etc/hosts.

const pebbleModule = "github.com/letsencrypt/pebble/v2"

// pebbleBuild holds the binaries, built once per test process into the
// directory TestMain removes at exit.
var pebbleBuild struct {
	once               sync.Once
	pebble, challtest  string
	certDir, minicaPEM string // from the module: pebble's own HTTPS identity and CA
	err                error
}

// pebbleBinaries builds pebble and pebble-challtestsrv (a second or two
// with a warm build cache) and finds the module's test certificates.
func pebbleBinaries(t *testing.T) (pebbleBin, challtestBin string) {
	t.Helper()
	b := &pebbleBuild
	b.once.Do(func() {
		dir := filepath.Dir(binPath)
		cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
			pebbleModule+"/cmd/pebble", pebbleModule+"/cmd/pebble-challtestsrv")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build pebble: %v\n%s", err, out)
			return
		}
		b.pebble, b.challtest = filepath.Join(dir, "pebble"), filepath.Join(dir, "pebble-challtestsrv")
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", pebbleModule).Output()
		if err != nil {
			b.err = fmt.Errorf("go list -m %s: %v", pebbleModule, err)
			return
		}
		mod := strings.TrimSpace(string(out))
		b.certDir = filepath.Join(mod, "test", "certs")
		b.minicaPEM = filepath.Join(b.certDir, "pebble.minica.pem")
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.pebble, b.challtest
}

// pebbleOptions are what a test chooses about the CA.
type pebbleOptions struct {
	// HTTPPort is the port on 127.0.0.1 Pebble's VA fetches HTTP-01
	// responses from: tandem's plain HTTP port. 0 picks an unused port.
	HTTPPort int
	// TLSPort is the port on 127.0.0.1 Pebble's VA connects to for
	// TLS-ALPN-01: tandem's TLS port. 0 picks an unused port.
	TLSPort int
	// Validity is the lifetime of issued certificates (whole seconds);
	// 0 means Pebble's 90 days.
	Validity time.Duration
}

// pebble is a running Pebble with its DNS server.
type pebble struct {
	t *testing.T
	// DirectoryURL is the ACME directory (tandem's acme_ca).
	DirectoryURL string
	// RootFile is the PEM CA of Pebble's own HTTPS API (tandem's
	// acme_ca_root). It is NOT the CA of issued certificates: see
	// IssuerRoots.
	RootFile string
	// MgmtURL is Pebble's management API (roots, intermediates, ARI
	// overrides), served with the same HTTPS identity as the directory.
	MgmtURL string
	// DNSAddr is challtestsrv's DNS address (UDP and TCP; Pebble's VA
	// queries it over TCP).
	DNSAddr string

	srv, dns *peer
	api      *http.Client // trusts RootFile

	rootsOnce sync.Once
	roots     *x509.CertPool
	rootsErr  error
}

// startPebble starts challtestsrv and Pebble on free loopback ports and
// waits until the directory answers; both are stopped (process groups)
// when the test ends, and their output is logged if it failed. A port
// taken between choosing and binding it is retried.
func startPebble(t *testing.T, opts pebbleOptions) *pebble {
	t.Helper()
	pebbleBin, challtestBin := pebbleBinaries(t)
	if opts.HTTPPort == 0 {
		opts.HTTPPort = freePorts(t, 1)[0]
	}
	if opts.TLSPort == 0 {
		opts.TLSPort = freePorts(t, 1)[0]
	}
	p := &pebble{t: t, RootFile: pebbleBuild.minicaPEM}
	pool := x509.NewCertPool()
	rootPEM, err := os.ReadFile(p.RootFile)
	if err != nil || !pool.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble API root %s: %v", p.RootFile, err)
	}
	p.api = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	t.Cleanup(p.api.CloseIdleConnections)

	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		err := p.startDNS(challtestBin)
		if err == nil {
			err = p.startCA(pebbleBin, dir, opts)
		}
		if err == nil {
			return p
		}
		raced := (p.dns != nil && p.dns.bindRace()) || (p.srv != nil && p.srv.bindRace())
		if !raced || attempt == 3 {
			t.Fatalf("start pebble: %v\n%s", err, p.Logs())
		}
		p.Stop()
	}
}

// startDNS runs challtestsrv as a DNS server only (A: 127.0.0.1, no AAAA);
// the challenge servers are off and the management API, which cannot be
// turned off, listens on a free loopback port.
func (p *pebble) startDNS(bin string) error {
	p.DNSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freeUDPTCPPort(p.t)))
	mgmt := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(p.t, 1)[0]))
	p.dns = startProc(p.t, "pebble-challtestsrv", nil, bin,
		"-dnsserver", p.DNSAddr, "-management", mgmt,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	return p.dns.waitReady(10*time.Second, func() error {
		c, err := net.DialTimeout("tcp", p.DNSAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// startCA writes Pebble's config and runs it against the DNS server.
// PEBBLE_VA_NOSLEEP drops the VA's random 0–15s delay,
// PEBBLE_WFE_NONCEREJECT=0 its 5% of deliberately rejected nonces, and
// PEBBLE_AUTHZREUSE=0 its 50% chance of reusing a valid authorization, so
// every order (renewals too) has its challenge really validated.
func (p *pebble) startCA(bin, dir string, opts pebbleOptions) error {
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(p.t, 1)[0]))
	mgmt := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(p.t, 1)[0]))
	validity := int64(opts.Validity / time.Second)
	if validity <= 0 {
		validity = 90 * 24 * 3600
	}
	// One profile only: Pebble picks a random profile for orders that
	// name none, so a second profile would make the validity a coin toss.
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    filepath.Join(pebbleBuild.certDir, "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(pebbleBuild.certDir, "localhost", "key.pem"),
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 0, "order": 0}, // 0: no Retry-After on polls
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{
			"default": map[string]any{"description": "tandem tests", "validityPeriod": validity},
		},
	}}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	path := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	p.DirectoryURL = "https://" + listen + "/dir"
	p.MgmtURL = "https://" + mgmt
	p.srv = startProc(p.t, "pebble", []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		bin, "-config", path, "-dnsserver", p.DNSAddr)
	return p.srv.waitReady(20*time.Second, func() error {
		_, err := p.Directory()
		return err
	})
}

// Directory fetches and decodes the ACME directory.
func (p *pebble) Directory() (map[string]any, error) {
	b, err := p.get(p.DirectoryURL)
	if err != nil {
		return nil, err
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("directory %s: %v: %q", p.DirectoryURL, err, b)
	}
	return d, nil
}

func (p *pebble) get(url string) ([]byte, error) {
	resp, err := p.api.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %q", url, resp.Status, b)
	}
	return b, err
}

// IssuerRoots is the root issued certificates chain to (management API
// /roots/0). Pebble makes a new one at every start, and one intermediate
// signs leaves: a client needs the intermediate served with the leaf,
// as a browser would.
func (p *pebble) IssuerRoots() *x509.CertPool {
	p.t.Helper()
	p.rootsOnce.Do(func() {
		b, err := p.get(p.MgmtURL + "/roots/0")
		if err != nil {
			p.rootsErr = err
			return
		}
		p.roots = x509.NewCertPool()
		if !p.roots.AppendCertsFromPEM(b) {
			p.rootsErr = fmt.Errorf("/roots/0 holds no PEM certificate: %q", b)
		}
	})
	if p.rootsErr != nil {
		p.t.Fatalf("pebble issuer root: %v", p.rootsErr)
	}
	return p.roots
}

// Logs is both processes' output so far.
func (p *pebble) Logs() string {
	var s strings.Builder
	for _, pr := range []*peer{p.dns, p.srv} {
		if pr != nil {
			fmt.Fprintf(&s, "--- %s:\n%s", pr.name, pr.out.String())
		}
	}
	return s.String()
}

// Stop kills Pebble and challtestsrv now (a test that proves tandem no
// longer needs the CA); the cleanup does it otherwise.
func (p *pebble) Stop() {
	for _, pr := range []*peer{p.srv, p.dns} {
		if pr != nil {
			pr.stop()
		}
	}
}

// startProc runs a helper process in its own process group with extra
// environment, and stops the group when the test ends, logging its output
// if the test failed.
func startProc(t *testing.T, name string, env []string, args ...string) *peer {
	t.Helper()
	p := &peer{t: t, name: name, stopSig: syscall.SIGTERM, exited: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.start(t)
	return p
}

// handedPorts are ports freeUDPTCPPort already returned, so that parallel
// tests never get the same one.
var handedPorts sync.Map

// freeUDPTCPPort is a port on 127.0.0.1 free for both TCP and UDP a
// moment ago (a DNS server binds both).
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		if _, dup := handedPorts.LoadOrStore(port, true); !dup {
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP on 127.0.0.1")
	return 0
}

// freePorts is n distinct TCP ports on 127.0.0.1, held open together
// while chosen so they differ from each other, and never handed out twice
// in this process.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n && len(ls) < n+50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		port := l.Addr().(*net.TCPAddr).Port
		if _, dup := handedPorts.LoadOrStore(port, true); !dup {
			ports = append(ports, port)
		}
	}
	if len(ports) < n {
		t.Fatalf("only %d of %d free ports", len(ports), n)
	}
	return ports
}

// servedCert handshakes with addr using sni and verifies the served chain
// against roots for sni, as a browser would (intermediates only from the
// handshake). It returns the leaf, and an error if the handshake or the
// verification failed.
func servedCert(addr, sni string, roots *x509.CertPool) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return nil, fmt.Errorf("handshake with %s (SNI %s): %w", addr, sni, err)
	}
	defer c.Close()
	chain := c.ConnectionState().PeerCertificates
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	leaf := chain[0]
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: sni, Roots: roots, Intermediates: inter})
	if err != nil {
		err = fmt.Errorf("%s (SNI %s) serves %q (issuer %q, serial %v, %d in chain): %w",
			addr, sni, leaf.Subject.CommonName, leaf.Issuer.CommonName, leaf.SerialNumber, len(chain), err)
	}
	return leaf, err
}

// httpSolver answers HTTP-01 challenges for the harness's own test.
type httpSolver struct {
	chal atomic.Pointer[acme.Challenge]
}

func (h *httpSolver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.chal.Load()
	if c == nil || r.URL.Path != c.HTTP01ResourcePath() {
		http.NotFound(w, r)
		return
	}
	_, _ = io.WriteString(w, c.KeyAuthorization)
}

func (h *httpSolver) Present(_ context.Context, c acme.Challenge) error {
	h.chal.Store(&c)
	return nil
}

func (h *httpSolver) CleanUp(context.Context, acme.Challenge) error {
	h.chal.Store(nil)
	return nil
}

// The harness works without tandem: the directory answers, and a plain
// ACME client gets a certificate for a made-up name by HTTP-01 on the
// chosen port (so challtestsrv's DNS, the VA port, the validity and
// IssuerRoots are right) — a failure in the tandem ACME tests is then
// tandem's.
func TestPebbleHarness_Starts(t *testing.T) {
	t.Parallel()
	solverLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	solver := &httpSolver{}
	srv := &http.Server{Handler: solver, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(solverLn) }()
	t.Cleanup(func() { srv.Close() })

	const validity = 40 * time.Second
	p := startPebble(t, pebbleOptions{HTTPPort: solverLn.Addr().(*net.TCPAddr).Port, Validity: validity})
	d, err := p.Directory()
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := d["newOrder"].(string); !strings.HasPrefix(u, "https://127.0.0.1:") {
		t.Fatalf("directory %v: no newOrder URL", d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := acmez.Client{
		Client:           &acme.Client{Directory: p.DirectoryURL, HTTPClient: p.api},
		ChallengeSolvers: map[string]acmez.Solver{acme.ChallengeTypeHTTP01: solver},
	}
	accountKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	account, err := client.NewAccount(ctx, acme.Account{TermsOfServiceAgreed: true, PrivateKey: accountKey})
	if err != nil {
		t.Fatalf("new account: %v", err)
	}
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certs, err := client.ObtainCertificateForSANs(ctx, account, certKey, []string{"harness.tandem.test"})
	if err != nil || len(certs) == 0 {
		t.Fatalf("obtain: %v", err)
	}
	var chain []*x509.Certificate
	for rest := certs[0].ChainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "harness.tandem.test", Roots: p.IssuerRoots(), Intermediates: inter}); err != nil {
		t.Errorf("issued certificate does not verify against IssuerRoots: %v", err)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore) + time.Second; got != validity {
		t.Errorf("validity %v, want %v", got, validity)
	}
}
