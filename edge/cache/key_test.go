package cache

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestKeyTemplate_Expands(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://Example.COM:8080/a%20b/c?x=1&y=2", nil)
	r.Header.Set("X-Tenant", "acme")
	r.AddCookie(&http.Cookie{Name: "lang", Value: "fr"})
	for _, tc := range []struct{ tpl, want string }{
		{DefaultKey, "http://example.com/a%20b/c?x=1&y=2"},
		{"$host$uri", "example.com/a b/c"},
		{"$uri$is_args$args", "/a b/c?x=1&y=2"},
		{"${host}|$http_x_tenant|$cookie_lang|$cookie_none", "example.com|acme|fr|"},
	} {
		k, err := compileKey(tc.tpl)
		if err != nil {
			t.Fatalf("%s: %v", tc.tpl, err)
		}
		if got := string(k.append(nil, r)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.tpl, got, tc.want)
		}
	}
	r.TLS = &tls.ConnectionState{}
	k, _ := compileKey("$scheme")
	if got := string(k.append(nil, r)); got != "https" {
		t.Errorf("$scheme over TLS: %q", got)
	}
}

func TestKeyTemplate_Errors(t *testing.T) {
	for _, tpl := range []string{"$nope", "${host", "a$", "$http_"} {
		if err := (Policy{Key: tpl}).Validate(); err == nil {
			t.Errorf("%q accepted", tpl)
		}
	}
}

// A custom key shares or splits entries as the template says.
func TestKeyTemplate_Policy(t *testing.T) {
	e := newEnv(t, Options{}, Policy{Key: "$host$uri|$http_x_tenant"}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, r.URL.RawQuery+r.Header.Get("X-Tenant"))
	})
	if e.get("/k?a=1", "X-Tenant: t1").x() != "MISS" {
		t.Fatal("first not a miss")
	}
	if res := e.get("/k?a=2", "X-Tenant: t1"); res.x() != "HIT" || res.body != "a=1t1" {
		t.Fatalf("query ignored by key: %q %q", res.x(), res.body)
	}
	if e.get("/k?a=1", "X-Tenant: t2").x() != "MISS" {
		t.Fatal("tenant not in key")
	}
}
