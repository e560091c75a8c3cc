package edge

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// The internal CA behind `tls internal`. Its files live under tls_storage:
//
//	pki/root.crt          the root certificate users trust (`tandem ca` prints it)
//	pki/root.key          its private key, mode 0600
//	pki/issued/NAME.crt   one leaf per internal site, NAME from its names
//	pki/issued/NAME.key   the leaf's key, mode 0600
//
// Directories are created with mode 0700. Only crypto/x509 is used; ACME
// (certmagic) is a different path.
const (
	caDirName     = "pki"
	caCertFile    = "root.crt"
	caKeyFile     = "root.key"
	issuedDirName = "issued"
	caCommonName  = "tandem local CA"
	caYears       = 10
	leafLifetime  = 7 * 24 * time.Hour
	// leafBackdate covers clocks a little behind ours.
	leafBackdate = time.Minute
	// renewRetry spaces renewal attempts after a failed one, so a full
	// disk does not cost a failed write per handshake.
	renewRetry = time.Minute
)

// localCA is the loaded internal CA.
type localCA struct {
	dir     string // tls_storage/pki
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// LocalCARoot returns the path and PEM of the internal CA's root
// certificate kept under storage (tls_storage), creating the CA first
// when it does not exist; created says whether it did. This is what
// users add to their trust stores for `tls internal` sites.
func LocalCARoot(storage string) (path string, certPEM []byte, created bool, err error) {
	ca, created, err := openLocalCA(storage)
	if err != nil {
		return "", nil, false, err
	}
	return filepath.Join(ca.dir, caCertFile), ca.certPEM, created, nil
}

// openLocalCA loads the CA under storage, creating it when its files are
// missing. A lock file keeps two processes (`tandem run` and `tandem ca`)
// from creating two different CAs at once.
func openLocalCA(storage string) (*localCA, bool, error) {
	dir := filepath.Join(storage, caDirName)
	if err := os.MkdirAll(filepath.Join(dir, issuedDirName), 0o700); err != nil {
		return nil, false, fmt.Errorf("local CA: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, false, fmt.Errorf("local CA: %w", err)
	}
	defer unlock()
	ca, err := loadCA(dir)
	if err == nil {
		return ca, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("local CA: %w", err)
	}
	ca, err = createCA(dir)
	if err != nil {
		return nil, false, fmt.Errorf("local CA: create: %w", err)
	}
	return ca, true, nil
}

// lockFile takes an exclusive flock on path, creating it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil // closing drops the lock
}

// loadCA reads the root certificate and key; fs.ErrNotExist means either
// is missing (a key alone cannot be trusted, a certificate alone cannot
// sign, so both are made anew).
func loadCA(dir string) (*localCA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !pair.Leaf.IsCA {
		return nil, fmt.Errorf("%s: %s is not an ECDSA CA", dir, caCertFile)
	}
	return &localCA{dir: dir, cert: pair.Leaf, certPEM: certPEM, key: key}, nil
}

// createCA makes the root: ECDSA P-256, 10 years, allowed to sign leaves
// only (path length 0).
func createCA(dir string) (*localCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: caCommonName, Organization: []string{"tandem"}},
		NotBefore:             now.Add(-leafBackdate),
		NotAfter:              now.AddDate(caYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key goes first: a certificate without its key is never left
	// behind as a CA that seems complete.
	if err := writeKey(filepath.Join(dir, caKeyFile), key); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, caCertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return &localCA{dir: dir, cert: cert, certPEM: certPEM, key: key}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeAtomic replaces path with data through a temporary file in the
// same directory, so a reader never sees half a certificate or key.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// leafNames splits a site's names into certificate SANs: host names and
// wildcards as DNS names, IP addresses as IPs; "_" is skipped.
func leafNames(names []string) (dns []string, ips []net.IP) {
	for _, n := range names {
		switch ip := net.ParseIP(n); {
		case n == "_" || n == "":
		case ip != nil:
			ips = append(ips, ip)
		default:
			dns = append(dns, n)
		}
	}
	// Sorted, so the same names in another order make the same leaf.
	slices.Sort(dns)
	slices.SortFunc(ips, func(a, b net.IP) int { return bytes.Compare(a.To16(), b.To16()) })
	return dns, ips
}

// leafBase names a site's leaf files: the first name, made file-safe,
// and a hash of all names, so two sites sharing a first name on
// different addresses keep apart.
func leafBase(names []string) string {
	sorted := slices.Sorted(slices.Values(names))
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	first := strings.NewReplacer("*", "wildcard", "/", "_", ":", "_").Replace(firstName(names))
	return first + "-" + hex.EncodeToString(sum[:4])
}

// leaf returns the site's certificate: the stored one while it is
// signed by this CA, names exactly the site's names and is younger than
// half its life; otherwise a new one, stored for the next start.
func (ca *localCA) leaf(names []string, now time.Time) (*tls.Certificate, error) {
	base := filepath.Join(ca.dir, issuedDirName, leafBase(names))
	if c, err := tls.LoadX509KeyPair(base+".crt", base+".key"); err == nil && ca.reusable(c.Leaf, names, now) {
		return &c, nil
	}
	return ca.issue(names, now)
}

// reusable reports whether a stored leaf can keep serving.
func (ca *localCA) reusable(leaf *x509.Certificate, names []string, now time.Time) bool {
	if leaf == nil || leaf.CheckSignatureFrom(ca.cert) != nil || now.Before(leaf.NotBefore) || !now.Before(renewTime(leaf)) {
		return false
	}
	dns, ips := leafNames(names)
	sameIPs := slices.EqualFunc(ips, leaf.IPAddresses, func(a, b net.IP) bool { return a.Equal(b) })
	return slices.Equal(dns, leaf.DNSNames) && sameIPs
}

// renewTime is half-way through a certificate's validity.
func renewTime(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 2)
}

// issue signs a new leaf for names, valid for leafLifetime, and stores it.
func (ca *localCA) issue(names []string, now time.Time) (*tls.Certificate, error) {
	dns, ips := leafNames(names)
	if len(dns) == 0 && len(ips) == 0 {
		return nil, errors.New("tls internal: the site has no name to certify")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: firstName(names)},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    now.Add(-leafBackdate),
		NotAfter:     now.Add(-leafBackdate).Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("tls internal: sign certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(ca.dir, issuedDirName, leafBase(names))
	if err := writeKey(base+".key", key); err != nil {
		return nil, fmt.Errorf("tls internal: store key: %w", err)
	}
	if err := writeAtomic(base+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("tls internal: store certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// internalCert is a `tls internal` site's certificate. It renews itself
// at the first handshake past half its life, so a server that runs for
// weeks without a reload never serves an expired leaf. A failed renewal
// keeps the current leaf (still valid for half its life) and is retried
// after renewRetry.
type internalCert struct {
	ca    *localCA
	names []string
	log   *zap.Logger

	cur     atomic.Pointer[tls.Certificate]
	renewAt atomic.Int64 // unix nanoseconds of the next renewal attempt
	mu      sync.Mutex   // one renewal at a time
}

func newInternalCert(ca *localCA, names []string, log *zap.Logger) (*internalCert, error) {
	c, err := ca.leaf(names, time.Now())
	if err != nil {
		return nil, err
	}
	ic := &internalCert{ca: ca, names: names, log: log}
	ic.set(c)
	return ic, nil
}

func (ic *internalCert) set(c *tls.Certificate) {
	ic.cur.Store(c)
	ic.renewAt.Store(renewTime(c.Leaf).UnixNano())
}

func (ic *internalCert) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if time.Now().UnixNano() < ic.renewAt.Load() {
		return ic.cur.Load(), nil
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	now := time.Now()
	if now.UnixNano() < ic.renewAt.Load() {
		return ic.cur.Load(), nil // renewed while we waited
	}
	c, err := ic.ca.issue(ic.names, now)
	if err != nil {
		ic.log.Error("tls internal: renew certificate; serving the current one", zap.Strings("names", ic.names), zap.Error(err))
		ic.renewAt.Store(now.Add(renewRetry).UnixNano())
		return ic.cur.Load(), nil
	}
	ic.log.Info("tls internal: renewed certificate", zap.Strings("names", ic.names), zap.Time("not_after", c.Leaf.NotAfter))
	ic.set(c)
	return c, nil
}
