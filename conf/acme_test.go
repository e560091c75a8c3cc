package conf

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A site's acme_* directives override the top-level ones field by field,
// and unset fields fall back to the defaults.
func TestACME_SettingsMerge(t *testing.T) {
	files := tlsFiles(t)
	cfg := mustParseFiles(t, `
acme_ca https://ca.test/dir;
acme_ca_root certs/ca.pem;
acme_email ops@a.com;
acme_challenges tls-alpn-01;
tls_renew_check 1s;
site a.com www.a.com { listen 443; tls auto; root /www; }
site b.com { listen 443; tls auto me@b.com; acme_challenges http-01 tls-alpn-01; acme_ca letsencrypt_staging; root /www; }
site _ { listen 443; tls on_demand ask http://127.0.0.1:9/ok; root /www; }
site plain.com { listen 8443; tls internal; root /www; }
site bare.com { listen 443; tls auto; root /www; }
`, files)
	want := ACME{CA: "https://ca.test/dir", CARoot: "/t/certs/ca.pem", Email: "ops@a.com", TLSALPN01: true}
	a := cfg.Sites[0].TLS
	if !a.Auto || a.ACME == nil || !sameACME(*a.ACME, want) {
		t.Errorf("a.com TLS = %+v, ACME %+v; want auto with %+v", a, a.ACME, want)
	}
	b := cfg.Sites[1].TLS.ACME
	wantB := ACME{CA: LetsEncryptStaging, CARoot: "/t/certs/ca.pem", Email: "me@b.com", HTTP01: true, TLSALPN01: true}
	if !sameACME(*b, wantB) {
		t.Errorf("b.com ACME = %+v, want %+v", *b, wantB)
	}
	od := cfg.Sites[2].TLS
	if od.Auto || od.OnDemandAsk != "http://127.0.0.1:9/ok" || od.ACME == nil || od.ACME.Email != "ops@a.com" {
		t.Errorf("on-demand TLS = %+v (ACME %+v)", od, od.ACME)
	}
	if cfg.Sites[3].TLS.ACME != nil {
		t.Errorf("tls internal site got ACME settings %+v", cfg.Sites[3].TLS.ACME)
	}
	if cfg.TLSRenewCheck != time.Second {
		t.Errorf("TLSRenewCheck = %v, want 1s", cfg.TLSRenewCheck)
	}

	def := mustParse(t, "site a.com { listen 443; tls auto; root /www; }")
	got := *def.Sites[0].TLS.ACME
	if !sameACME(got, ACME{CA: LetsEncrypt, HTTP01: true, TLSALPN01: true}) || def.TLSRenewCheck != 10*time.Minute {
		t.Errorf("defaults: ACME %+v, renew check %v", got, def.TLSRenewCheck)
	}
}

func sameACME(a, b ACME) bool {
	return a.CA == b.CA && a.CARoot == b.CARoot && a.Email == b.Email && a.HTTP01 == b.HTTP01 && a.TLSALPN01 == b.TLSALPN01
}

func TestACME_Errors(t *testing.T) {
	const f = "/t/main.conf:"
	files := tlsFiles(t)
	onTLS := func(body string) string { return site("listen 443; " + body) }
	named := func(names, body string) string {
		return "site " + names + " {\nlisten 443; root /www; " + body + "\n}\n"
	}
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"bad email", onTLS("tls auto admin;"), []string{f + `4:22: tls: expected an email address, got "admin"`}},
		{"email twice", onTLS("acme_email a@a.com; tls auto b@a.com;"),
			[]string{f + `4:42: tls auto: the email is given twice (here and in acme_email); keep one`}},
		{"wildcard", named("a.com *.a.com", "tls auto;"),
			[]string{f + `1:12: tls auto cannot get a certificate for "*.a.com": wildcard certificates need the DNS-01 challenge, which tandem does not do; list the names, or use "tls on_demand ask URL;"`}},
		{"no name", named("_", "tls auto;"),
			[]string{f + `2:24: "tls auto" needs a site name to get a certificate for (e.g. site example.com { ... }); for any name, use "tls on_demand ask URL;"`}},
		{"on_demand without ask", onTLS("tls on_demand http://x/;"),
			[]string{f + `4:13: tls on_demand: expected "tls on_demand ask URL;" (URL approves each name: a GET with ?domain=NAME must answer 200)`}},
		{"on_demand bad URL", onTLS("tls on_demand ask ftp://x/;"),
			[]string{f + `4:31: tls: expected an http:// or https:// URL, got "ftp://x/"`}},
		{"plain CA URL", "acme_ca http://ca.test/dir;\n" + onTLS("tls auto;"),
			[]string{f + `1:9: acme_ca: expected an https:// ACME directory URL, letsencrypt or letsencrypt_staging, got "http://ca.test/dir"`}},
		{"CA root missing", "acme_ca_root /nope.pem;\n" + onTLS("tls auto;"),
			[]string{f + `1:14: acme_ca_root "/nope.pem": file does not exist`}},
		{"site CA root not PEM", onTLS("tls auto; acme_ca_root certs/a.key;"),
			[]string{f + `4:36: acme_ca_root "/t/certs/a.key": no PEM certificate in the file`}},
		{"unknown challenge", onTLS("tls auto; acme_challenges dns-01;"),
			[]string{f + `4:39: acme_challenges: expected http-01 or tls-alpn-01, got "dns-01" (DNS-01 is not supported)`}},
		{"acme without auto", onTLS("tls internal; acme_ca letsencrypt;"),
			[]string{f + `4:27: acme_* directives need "tls auto" or "tls on_demand" in this site`}},
		{"acme without tls", site("acme_email a@a.com;"),
			[]string{f + `4:1: acme_* directives need "tls auto" or "tls on_demand" in this site`}},
		{"renew check zero", "tls_renew_check 0s;\n" + onTLS("tls auto;"),
			[]string{f + `1:17: tls_renew_check: expected a duration above zero, got "0s"`}},
		{"renew check in site", onTLS("tls auto; tls_renew_check 1m;"),
			[]string{f + `4:23: "tls_renew_check" is not allowed in site; allowed in: main`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseMem(tc.src, files)
			if got := errLines(errs); !slices.Equal(got, tc.want) {
				t.Errorf("source:\n%s\ngot errors:\n  %s\nwant:\n  %s", tc.src, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
