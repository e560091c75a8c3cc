package conf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testKeyPair returns a self-signed certificate for name and its key, as
// PEM.
func testKeyPair(t *testing.T, name string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// tlsFiles are a valid pair under /t/certs, a second key that does not
// match, and a CA bundle.
func tlsFiles(t *testing.T) map[string]string {
	cert, key := testKeyPair(t, "a.com")
	_, other := testKeyPair(t, "b.com")
	return map[string]string{
		"/t/certs/a.crt": cert, "/t/certs/a.key": key, "/t/certs/other.key": other,
		"/t/certs/ca.pem": testCA(t), "/t/certs/junk.crt": "not a certificate\n",
	}
}

// TestTLSDirectives_Good pins how tls, tls_client_ca, hsts, http_redirect,
// tls_storage and listen's http flag land in the model, and the TLS
// defaults: :443 and :80 without listen, http_redirect on.
func TestTLSDirectives_Good(t *testing.T) {
	cfg, errs := parseMem(`tls_storage state/tls;
site a.com {
    listen 443 80 default;
    listen 127.0.0.1:8080 http;
    tls certs/a.crt certs/a.key;
    hsts 365d include_subdomains preload;
}
site b.test *.b.test {
    tls internal;
    http_redirect off;
}
site m.test {
    tls_client_ca certs/ca.pem;
    listen 8443;
    tls internal;
    hsts 1h;
}
site plain.test { listen 80; root /www; }
`, tlsFiles(t))
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	at := func(line, col int) Pos { return Pos{File: "/t/main.conf", Line: line, Col: col} }
	a, b, m, plain := cfg.Sites[0], cfg.Sites[1], cfg.Sites[2], cfg.Sites[3]
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s =\n  %+v\nwant\n  %+v", name, got, want)
		}
	}
	check("TLSStorage", cfg.TLSStorage, "/t/state/tls")
	check("a.Listen", a.Listen, []Listen{
		{Pos: at(3, 12), Addr: ":443", Default: true, TLS: true},
		{Pos: at(3, 16), Addr: ":80", Default: true},
		{Pos: at(4, 12), Addr: "127.0.0.1:8080", HTTP: true},
	})
	check("a.TLS", *a.TLS, SiteTLS{Pos: at(5, 5), CertFile: "/t/certs/a.crt", KeyFile: "/t/certs/a.key",
		certPos: at(5, 9), keyPos: at(5, 21)})
	check("a.HSTS", *a.HSTS, HSTS{Pos: at(6, 5), MaxAge: 365 * 24 * time.Hour, IncludeSubdomains: true, Preload: true})
	check("a.HTTPRedirect", a.HTTPRedirect, true)
	check("b.Listen (defaulted)", b.Listen, []Listen{{Pos: at(8, 1), Addr: ":443", TLS: true}, {Pos: at(8, 1), Addr: ":80"}})
	check("b.TLS", *b.TLS, SiteTLS{Pos: at(9, 5), Internal: true})
	check("b.HTTPRedirect", b.HTTPRedirect, false)
	check("m.TLS.ClientCA", m.TLS.ClientCA, "/t/certs/ca.pem")
	check("m.HSTS", *m.HSTS, HSTS{Pos: at(16, 5), MaxAge: time.Hour})
	check("plain.TLS", plain.TLS, (*SiteTLS)(nil))
	check("plain.Listen", plain.Listen, []Listen{{Pos: at(18, 26), Addr: ":80"}})
}

// tls_storage defaults to "tls" under the state directory.
func TestTLSStorage_Default(t *testing.T) {
	cfg := mustParse(t, "site a { listen 80; root /www; }")
	if cfg.TLSStorage != DefaultTLSStorage() || !strings.HasSuffix(cfg.TLSStorage, "/tls") {
		t.Errorf("TLSStorage = %q, want %q", cfg.TLSStorage, DefaultTLSStorage())
	}
}

// Every TLS mistake is reported at the argument or directive it is about.
func TestTLSErrors(t *testing.T) {
	const f = "/t/main.conf:"
	files := tlsFiles(t)
	tlsSite := func(name, body string) string { return "site " + name + " {\n" + body + "\n}\n" }
	// onTLS is a site like site()'s, with an address that serves TLS.
	onTLS := func(body string) string { return site("listen 443; " + body) }
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"one unknown word", site("tls off;"), []string{f + `4:5: tls: expected CERT_FILE KEY_FILE, internal, auto [EMAIL] or on_demand ask URL, got "off" alone`}},
		{"internal with more", site("tls internal x;"), []string{f + `4:14: tls: "internal" takes no further argument, got "x"`}},
		{"three args", site("tls a b c;"), []string{f + `4:9: tls: expected CERT_FILE KEY_FILE, internal, auto [EMAIL] or on_demand ask URL, got a third argument "c"`}},
		{"four args", site("tls a b c d;"), []string{f + `4:1: "tls" takes 1 to 3 arguments, got 4`}},
		{"in a location", site("location / { tls internal; }"), []string{f + `4:14: "tls" is not allowed in location; allowed in: site`}},
		{"files missing", onTLS("tls /nope.crt nope.key;"), []string{
			f + `4:17: tls certificate "/nope.crt": file does not exist`,
			f + `4:27: tls key "/t/nope.key": file does not exist`,
		}},
		{"key of another cert", onTLS("tls certs/a.crt certs/other.key;"),
			[]string{f + `4:29: tls key "/t/certs/other.key": does not match the certificate in "/t/certs/a.crt"`}},
		{"swapped", onTLS("tls certs/a.key certs/a.crt;"),
			[]string{f + `4:17: tls certificate "/t/certs/a.key": holds a private key but no certificate; are CERT_FILE and KEY_FILE swapped?`}},
		{"not PEM", onTLS("tls certs/junk.crt certs/a.key;"),
			[]string{f + `4:17: tls certificate "/t/certs/junk.crt": no PEM certificate in the file`}},
		{"key not PEM", onTLS("tls certs/a.crt certs/junk.crt;"),
			[]string{f + `4:29: tls key "/t/certs/junk.crt": failed to find any PEM data in key input`}},
		{"only port 80", site("tls internal;"),
			[]string{f + `4:1: site "a.com" has tls but no address serving it: port 80 and addresses marked http serve plain HTTP; add e.g. "listen 443;"`}},
		{"internal without a name", tlsSite("_", "listen 8443; tls internal;"),
			[]string{f + `2:14: "tls internal" needs a site name to put in the certificate; name the site (e.g. site localhost { ... })`}},

		{"client CA without tls", site("tls_client_ca certs/ca.pem;"),
			[]string{f + `4:15: tls_client_ca needs tls in this site (client certificates are asked during the TLS handshake)`}},
		{"client CA missing", tlsSite("a", "listen 8443; tls internal; tls_client_ca ca.pem;"),
			[]string{f + `2:42: tls_client_ca "/t/ca.pem": file does not exist`}},
		{"client CA not a certificate", tlsSite("a", "listen 8443; tls internal; tls_client_ca certs/a.key;"),
			[]string{f + `2:42: tls_client_ca "/t/certs/a.key": no PEM certificate in the file`}},

		{"hsts without tls", site("hsts 1d;"), []string{f + `4:1: hsts needs tls in this site (browsers ignore it over plain HTTP)`}},
		{"hsts bad duration", site("tls internal; listen 443; hsts 1y;"),
			[]string{f + `4:32: hsts: expected a duration like 30s or 5m, got "1y"`}},
		{"hsts fraction", site("tls internal; listen 443; hsts 1500ms;"),
			[]string{f + `4:32: hsts: max-age is counted in whole seconds, got "1500ms"`}},
		{"hsts unknown option", site("tls internal; listen 443; hsts 1d subdomains;"),
			[]string{f + `4:35: hsts: expected include_subdomains or preload (each at most once), got "subdomains"`}},
		{"hsts preload alone", site("tls internal; listen 443; hsts 365d preload;"),
			[]string{f + `4:37: hsts: preload needs include_subdomains and a duration of at least 365d (the preload lists' rules)`}},
		{"hsts preload short", site("tls internal; listen 443; hsts 30d preload include_subdomains;"),
			[]string{f + `4:36: hsts: preload needs include_subdomains and a duration of at least 365d (the preload lists' rules)`}},

		{"http_redirect without tls", site("http_redirect off;"), []string{f + `4:1: "http_redirect" has no effect without tls in this site`}},
		{"http_redirect bad", site("tls internal; listen 443; http_redirect yes;"),
			[]string{f + `4:41: http_redirect: expected on or off, got "yes"`}},
		{"listen flag without an address", site("listen http;"), []string{f + `4:1: "listen" needs an address before "http"`}},
		{"tls_storage in a site", site("tls_storage /x;"), []string{f + `4:1: "tls_storage" is not allowed in site; allowed in: main`}},

		// one address, one mode
		{"TLS and plain on one address",
			tlsSite("a.test", "listen 8443; tls internal;") + tlsSite("b.test", "listen 8443; root /www;"),
			[]string{f + `5:8: site "b.test" serves plain HTTP on :8443 but site "a.test" (at /t/main.conf:2:8) serves TLS there; an address is either TLS or plain HTTP, so give one of them another address`}},
		{"a redirect and TLS on one address",
			tlsSite("a.test", "listen 8443; listen 8080 http; tls internal;") + tlsSite("b.test", "listen 8080; tls internal;"),
			[]string{f + `5:8: site "b.test" serves TLS on :8080 but site "a.test" (at /t/main.conf:2:21) serves plain HTTP (its redirect to HTTPS) there; an address is either TLS or plain HTTP, so give one of them another address`}},
		{"plain-served TLS site and TLS on one address",
			tlsSite("a.test", "listen 8443; listen 8080 http; tls internal; http_redirect off;") + tlsSite("b.test", "listen 8080; tls internal;"),
			[]string{f + `5:8: site "b.test" serves TLS on :8080 but site "a.test" (at /t/main.conf:2:21) serves plain HTTP (http_redirect off) there; an address is either TLS or plain HTTP, so give one of them another address`}},
		{"client CAs differ",
			tlsSite("a.test", "listen 8443; tls internal; tls_client_ca certs/ca.pem;") + tlsSite("b.test", "listen 8443; tls internal;"),
			[]string{f + `5:8: site "b.test" on :8443 has tls_client_ca none but site "a.test" (at /t/main.conf:2:8) has "/t/certs/ca.pem"; all TLS sites on one address must use the same tls_client_ca`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseMem(tc.src, files)
			if got := errLines(errs); !slices.Equal(got, tc.want) {
				t.Errorf("source:\n%s\ngot errors:\n  %s\nwant:\n  %s", tc.src, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// Plain sites and TLS sites' redirects share port 80, as every nginx
// setup with a default server does; two TLS sites share :443.
func TestTLS_SharedAddresses(t *testing.T) {
	_, errs := parseMem(`
site old.test { listen 80; root /www; }
site a.test { tls internal; }
site b.test { tls certs/a.crt certs/a.key; http_redirect off; root /www; }
`, tlsFiles(t))
	if errs != nil {
		t.Errorf("unexpected errors:\n%v", errs)
	}
}
