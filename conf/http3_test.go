package conf

import (
	"slices"
	"strings"
	"testing"
)

// http3 and the h2c listen flag land in the model: http3 off unless
// said, h2c on the addresses of its line only.
func TestHTTP3AndH2C_Good(t *testing.T) {
	cfg := mustParse(t, `
site a.test {
    listen 8443;
    listen 8080 http;
    tls internal;
    http3 on;
}
site b.test { listen 127.0.0.1:8081 [::1]:8081 h2c default; listen 8082; root /www; }
site c.test { listen 8444; tls internal; http3 off; }
site d.test { listen 8445; tls internal; }
site e.test { listen 80 h2c; listen 8446; tls internal; }
`)
	a, b, c, d, e := cfg.Sites[0], cfg.Sites[1], cfg.Sites[2], cfg.Sites[3], cfg.Sites[4]
	if !a.HTTP3 || c.HTTP3 || d.HTTP3 || b.HTTP3 {
		t.Errorf("HTTP3: a %v b %v c %v d %v, want only a on", a.HTTP3, b.HTTP3, c.HTTP3, d.HTTP3)
	}
	var got []string
	for _, l := range b.Listen {
		got = append(got, l.Addr, boolWord(l.H2C), boolWord(l.Default))
	}
	want := []string{"127.0.0.1:8081", "on", "on", "[::1]:8081", "on", "on", ":8082", "off", "off"}
	if !slices.Equal(got, want) {
		t.Errorf("b's listens (addr, h2c, default) = %v, want %v", got, want)
	}
	// A TLS site's port 80 is plain HTTP (its redirect), so h2c is fine.
	if l := e.Listen[0]; !l.H2C || l.TLS {
		t.Errorf("e's :80: h2c %v tls %v, want h2c on a plain address", l.H2C, l.TLS)
	}
}

func boolWord(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

// http3 needs tls, and h2c is refused on an address that serves TLS;
// each error points at what was written.
func TestHTTP3AndH2C_Errors(t *testing.T) {
	const f = "/t/main.conf:"
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"http3 without tls", site("http3 on;"),
			[]string{f + `4:1: http3 needs tls in this site (HTTP/3 runs over QUIC, which is always encrypted)`}},
		{"http3 bad value", site("listen 443; tls internal; http3 yes;"),
			[]string{f + `4:33: http3: expected on or off, got "yes"`}},
		{"http3 in a location", site("location / { http3 on; }"),
			[]string{f + `4:14: "http3" is not allowed in location; allowed in: site`}},
		{"http3 at top level", "http3 on;\n" + site(""),
			[]string{f + `1:1: "http3" is not allowed in main; allowed in: site`}},
		{"h2c on a TLS address", "site a.test {\nlisten 8443 h2c;\ntls internal;\n}\n",
			[]string{f + `2:13: h2c is for plain HTTP addresses; TLS addresses negotiate HTTP/2 by ALPN (:8443 serves TLS in site "a.test")`}},
		{"h2c alone", site("listen h2c;"), []string{f + `4:1: "listen" needs an address before "h2c"`}},
		{"h2c twice", site("listen 8081 h2c h2c;"), []string{f + `4:13: ` + listenErr(t, "h2c")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseMem(tc.src, nil)
			if got := errLines(errs); !slices.Equal(got, tc.want) {
				t.Errorf("source:\n%s\ngot errors:\n  %s\nwant:\n  %s", tc.src, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// listenErr is normalizeListen's message for a bad address, so the test
// pins where the error points rather than its wording.
func listenErr(t *testing.T, addr string) string {
	t.Helper()
	_, err := normalizeListen(addr)
	if err == nil {
		t.Fatalf("%q is a valid address", addr)
	}
	return err.Error()
}
