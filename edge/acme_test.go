package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
)

// The ask endpoint decides; the rate limit caps what it approves; an
// unreachable endpoint refuses.
func TestACME_AskDecision(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Query().Get("domain")
		mu.Lock()
		asked = append(asked, d)
		mu.Unlock()
		if r.URL.Query().Get("k") != "v" {
			http.Error(w, "the URL's own query was lost", http.StatusBadRequest)
			return
		}
		if strings.HasPrefix(d, "ok") {
			return // 200
		}
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer ask.Close()

	m := newACMEManager(zap.NewNop(), time.Hour)
	m.onDemandBurst, m.onDemandWindow = 2, time.Hour
	defer m.close()
	sc := &conf.Site{Names: []string{"_"}, TLS: &conf.SiteTLS{
		OnDemandAsk: ask.URL + "/check?k=v",
		ACME:        &conf.ACME{CA: "https://ca.invalid/dir", HTTP01: true},
	}}
	c, err := m.siteCert(sc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.names) != 0 {
		t.Errorf("an on-demand site manages %v up front, want none", c.names)
	}
	decide := c.iss.magic.OnDemand.DecisionFunc
	ctx := context.Background()
	if err := decide(ctx, "no.test"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("refused name: err = %v, want a refusal naming 403", err)
	}
	for _, n := range []string{"ok1.test", "ok2.test"} {
		if err := decide(ctx, n); err != nil {
			t.Errorf("approved %s: %v", n, err)
		}
	}
	if err := decide(ctx, "ok3.test"); err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("third approved name within the window: err = %v, want the rate limit", err)
	}
	mu.Lock()
	got := strings.Join(asked, ",")
	mu.Unlock()
	if got != "no.test,ok1.test,ok2.test,ok3.test" {
		t.Errorf("ask endpoint saw %q", got)
	}

	ask.Close()
	if err := decide(ctx, "ok4.test"); err == nil {
		t.Error("an unreachable ask endpoint approved a name")
	}
}

// Sites with the same ACME settings share an issuer; different settings
// or storage get their own; tls auto manages the exact names only.
func TestACME_IssuersShared(t *testing.T) {
	m := newACMEManager(zap.NewNop(), time.Hour)
	defer m.close()
	dir := t.TempDir()
	acme := conf.ACME{CA: "https://ca.invalid/dir", HTTP01: true, TLSALPN01: true}
	site := func(a conf.ACME, names ...string) *conf.Site {
		return &conf.Site{Names: names, Listen: []conf.Listen{{Addr: "127.0.0.1:8443", TLS: true}, {Addr: "127.0.0.1:8080"}},
			TLS: &conf.SiteTLS{Auto: true, ACME: &a}}
	}
	a, err := m.siteCert(site(acme, "a.test", "*.a.test", "www.a.test"), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.siteCert(site(acme, "b.test"), dir)
	other := acme
	other.Email = "x@b.test"
	c, _ := m.siteCert(site(other, "c.test"), dir)
	d, _ := m.siteCert(site(acme, "d.test"), t.TempDir())
	if a.iss != b.iss || a.iss == c.iss || a.iss == d.iss {
		t.Errorf("issuers: a=%p b=%p (want equal) c=%p d=%p (want others)", a.iss, b.iss, c.iss, d.iss)
	}
	if strings.Join(a.names, ",") != "a.test,www.a.test" || a.name != "a.test" {
		t.Errorf("names = %v, no-SNI name %q", a.names, a.name)
	}
	iss := a.iss.issuer
	if iss.ListenHost != "127.0.0.1" || iss.AltHTTPPort != 8080 || iss.AltTLSALPNPort != 8443 || !iss.Agreed {
		t.Errorf("challenge listeners: host %q http %d tls %d agreed %v", iss.ListenHost, iss.AltHTTPPort, iss.AltTLSALPNPort, iss.Agreed)
	}
}

// Only ACME validation paths are taken off the request path; everything
// else, and a challenge nobody is solving, goes on to the site.
func TestACME_HTTPChallengePassesOthersThrough(t *testing.T) {
	m := newACMEManager(zap.NewNop(), time.Hour)
	defer m.close()
	if _, err := m.siteCert(&conf.Site{Names: []string{"a.test"}, TLS: &conf.SiteTLS{Auto: true,
		ACME: &conf.ACME{CA: "https://ca.invalid/dir", HTTP01: true}}}, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/.well-known/other", "/.well-known/acme-challenge/unknown-token"} {
		r := httptest.NewRequest(http.MethodGet, "http://a.test"+path, nil)
		w := httptest.NewRecorder()
		if m.handleHTTPChallenge(w, r) {
			t.Errorf("%s was answered as a challenge (%d %q)", path, w.Code, w.Body.String())
		}
	}
}
