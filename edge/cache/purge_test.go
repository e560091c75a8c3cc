package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func purgeEnv(t *testing.T, opts Options) *env {
	e := newEnv(t, opts, Policy{}, nil)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language")
		if k := r.URL.Query().Get("tags"); k != "" {
			w.Header().Set("Surrogate-Key", k)
		}
		_, _ = io.WriteString(w, r.URL.String())
	})
	return e
}

// PurgeURL removes every variant of a URL; a trailing * is a prefix.
func TestPurgeURL(t *testing.T) {
	e := purgeEnv(t, Options{})
	e.get("/a", "Accept-Language: en")
	e.get("/a", "Accept-Language: fr")
	e.get("/a?x=1")
	e.get("/ab")
	e.get("/b")
	if n := e.c.PurgeURL("127.0.0.1:9", "/a"); n != 2 {
		t.Fatalf("purged %d, want both variants of /a", n)
	}
	if e.get("/a", "Accept-Language: en").x() != "MISS" || e.get("/a?x=1").x() != "HIT" {
		t.Fatal("exact purge removed the wrong entries")
	}
	if n := e.c.PurgeURL("127.0.0.1", "/a*"); n != 3 {
		t.Fatalf("prefix purged %d, want 3 (/a, /a?x=1, /ab)", n)
	}
	if e.get("/b").x() != "HIT" {
		t.Fatal("prefix purge removed /b")
	}
}

// PurgeTag removes the entries whose Surrogate-Key names the tag.
func TestPurgeTag(t *testing.T) {
	e := purgeEnv(t, Options{})
	e.get("/p1?tags=post-1+blog")
	e.get("/p2?tags=post-2%20blog")
	e.get("/home")
	if n := e.c.PurgeTag("post-1"); n != 1 {
		t.Fatalf("post-1 purged %d", n)
	}
	if n := e.c.PurgeTag("blog"); n != 1 {
		t.Fatalf("blog purged %d, want the remaining one", n)
	}
	if e.get("/home").x() != "HIT" || e.get("/p2?tags=post-2%20blog").x() != "MISS" {
		t.Fatal("tag purge removed the wrong entries")
	}
}

// The purge endpoint answers allowed networks only, and with a token
// configured, only requests bearing it.
func TestPurgeHandler_Auth(t *testing.T) {
	e := purgeEnv(t, Options{PurgeToken: "s3cret"})
	ps := httptest.NewServer(e.c.PurgeHandler())
	defer ps.Close()
	send := func(method, target, auth, host string) (int, string) {
		req, _ := http.NewRequest(method, ps.URL+target, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	e.get("/x?tags=t1")
	e.get("/y")
	for _, tc := range []struct {
		method, target, auth, host string
		status                     int
		body                       string
	}{
		{"POST", "/purge?tag=t1", "", "", 401, ""},
		{"POST", "/purge?tag=t1", "Bearer wrong", "", 401, ""},
		{"POST", "/purge?tag=t1", "Basic s3cret", "", 401, ""},
		{"GET", "/purge?tag=t1", "Bearer s3cret", "", 405, ""},
		{"POST", "/purge", "Bearer s3cret", "", 400, ""},
		{"POST", "/purge?tag=t1", "Bearer s3cret", "", 200, `{"purged":1}`},
		{"PURGE", "/y", "Bearer s3cret", "127.0.0.1", 200, `{"purged":1}`},
		{"POST", "/purge?url=" + e.front.URL + "/nothing", "Bearer s3cret", "", 200, `{"purged":0}`},
	} {
		st, body := send(tc.method, tc.target, tc.auth, tc.host)
		if st != tc.status || (tc.body != "" && body != tc.body) {
			t.Errorf("%s %s %q: %d %q, want %d %q", tc.method, tc.target, tc.auth, st, body, tc.status, tc.body)
		}
	}
	if e.c.Stats().Entries != 0 {
		t.Fatalf("entries left: %+v", e.c.Stats())
	}

	// From outside the allowed networks: 403 whatever the token.
	req := httptest.NewRequest("POST", "/purge?all=1", nil)
	req.RemoteAddr = "203.0.113.5:4000"
	req.Header.Set("Authorization", "Bearer s3cret")
	w := httptest.NewRecorder()
	e.c.PurgeHandler().ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Fatalf("non-loopback: %d", w.Code)
	}
}

// PurgeAllow may widen the networks, and then a token is required.
func TestPurgeAllow_RequiresToken(t *testing.T) {
	wide := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	if _, err := New(Options{PurgeAllow: wide}); err == nil {
		t.Fatal("non-loopback purge without a token accepted")
	}
	c, err := New(Options{PurgeAllow: wide, PurgeToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := httptest.NewRequest("POST", "/purge?all=1", nil)
	req.RemoteAddr = "203.0.113.5:4000"
	req.Header.Set("Authorization", "Bearer t")
	w := httptest.NewRecorder()
	c.PurgeHandler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("allowed network: %d", w.Code)
	}
}
