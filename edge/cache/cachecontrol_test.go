package cache

import (
	"net/http"
	"testing"
	"time"
)

// step is one request in a freshness scenario: advance the clock, send,
// and check X-Cache, the status and how often the origin was reached.
type step struct {
	advance  time.Duration
	req      []string // request header lines
	wantX    string
	wantHits int64
	status   int // 0: 200, or the case's status
}

// base is the fake clock's start, for Expires and Last-Modified values.
var base = time.Unix(1_700_000_000, 0)

var cacheControlCases = []struct {
	name   string
	pol    Policy
	status int
	hdr    []string
	steps  []step
}{
	// RFC 9111 §5.2.2.1: max-age sets the freshness lifetime.
	{name: "max-age fresh then stale", hdr: []string{"Cache-Control: max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {30 * time.Second, nil, "HIT", 1, 0}, {31 * time.Second, nil, "MISS", 2, 0}}},
	// §5.2.2.10: a shared cache prefers s-maxage to max-age.
	{name: "s-maxage beats max-age", hdr: []string{"Cache-Control: max-age=10, s-maxage=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {30 * time.Second, nil, "HIT", 1, 0}, {31 * time.Second, nil, "MISS", 2, 0}}},
	// §5.2.2.5: no-store is never stored.
	{name: "no-store", hdr: []string{"Cache-Control: no-store, max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	// §5.2.2.4: no-cache is stored but validated before every use.
	{name: "no-cache revalidates every use", hdr: []string{"Cache-Control: no-cache", `ETag: "a"`}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "REVALIDATED", 2, 0}, {time.Second, nil, "REVALIDATED", 3, 0}}},
	{name: "no-cache without validator is not stored", hdr: []string{"Cache-Control: no-cache, max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	// §5.2.2.7: private is for the client alone.
	{name: "private", hdr: []string{"Cache-Control: private, max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	{name: "qualified private", hdr: []string{`Cache-Control: private="Set-Cookie", max-age=60`}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	// §5.2.2.9 and §4.2.2: public allows heuristics for any status.
	{name: "public allows heuristic for 302", status: 302,
		hdr:   []string{"Cache-Control: public", "Location: /x", "Last-Modified: " + httpDate(base.Add(-240*time.Hour))},
		steps: []step{{0, nil, "MISS", 1, 302}, {time.Hour, nil, "HIT", 1, 302}}},
	{name: "no heuristic for 302 without public", status: 302,
		hdr:   []string{"Location: /x", "Last-Modified: " + httpDate(base.Add(-240*time.Hour))},
		steps: []step{{0, nil, "MISS", 1, 302}, {0, nil, "MISS", 2, 302}}},
	// §4.2.2: 10% of the time since Last-Modified.
	{name: "heuristic freshness", hdr: []string{"Last-Modified: " + httpDate(base.Add(-10*time.Hour))}, steps: []step{
		{0, nil, "MISS", 1, 0}, {59 * time.Minute, nil, "HIT", 1, 0}, {2 * time.Minute, nil, "MISS", 2, 0}}},
	{name: "heuristic capped at a day", hdr: []string{"Last-Modified: " + httpDate(base.Add(-100*24*time.Hour))}, steps: []step{
		{0, nil, "MISS", 1, 0}, {23 * time.Hour, nil, "HIT", 1, 0}, {2 * time.Hour, nil, "MISS", 2, 0}}},
	{name: "404 is cacheable by default", status: 404, hdr: []string{"Last-Modified: " + httpDate(base.Add(-10*time.Hour))},
		steps: []step{{0, nil, "MISS", 1, 404}, {time.Minute, nil, "HIT", 1, 404}}},
	{name: "no heuristic without Last-Modified", steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	{name: "500 with explicit max-age is stored", status: 500, hdr: []string{"Cache-Control: max-age=60"},
		steps: []step{{0, nil, "MISS", 1, 500}, {time.Second, nil, "HIT", 1, 500}}},
	// §5.3: Expires minus Date.
	{name: "Expires", hdr: []string{"Expires: " + httpDate(base.Add(60*time.Second))}, steps: []step{
		{0, nil, "MISS", 1, 0}, {30 * time.Second, nil, "HIT", 1, 0}, {31 * time.Second, nil, "MISS", 2, 0}}},
	{name: "max-age beats Expires", hdr: []string{"Cache-Control: max-age=10", "Expires: " + httpDate(base.Add(time.Hour))}, steps: []step{
		{0, nil, "MISS", 1, 0}, {11 * time.Second, nil, "MISS", 2, 0}}},
	{name: "invalid Expires means expired", hdr: []string{"Expires: 0"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	{name: "conflicting max-age means stale", hdr: []string{"Cache-Control: max-age=60, max-age=30"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	// §4.2.3: the upstream's Age counts against freshness.
	{name: "upstream Age", hdr: []string{"Cache-Control: max-age=60", "Age: 50"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {5 * time.Second, nil, "HIT", 1, 0}, {6 * time.Second, nil, "MISS", 2, 0}}},
	// Policy.DefaultTTL, like proxy_cache_valid.
	{name: "DefaultTTL for silent responses", pol: Policy{DefaultTTL: 10 * time.Minute}, steps: []step{
		{0, nil, "MISS", 1, 0}, {5 * time.Minute, nil, "HIT", 1, 0}, {6 * time.Minute, nil, "MISS", 2, 0}}},
	{name: "DefaultTTL not for 404", pol: Policy{DefaultTTL: 10 * time.Minute}, status: 404, steps: []step{
		{0, nil, "MISS", 1, 404}, {0, nil, "MISS", 2, 404}}},
	{name: "DefaultTTL does not override max-age", pol: Policy{DefaultTTL: 10 * time.Minute}, hdr: []string{"Cache-Control: max-age=5"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {6 * time.Second, nil, "MISS", 2, 0}}},
	{name: "DefaultTTL not for private", pol: Policy{DefaultTTL: 10 * time.Minute}, hdr: []string{"Cache-Control: private"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	{name: "DefaultTTL not for no-store", pol: Policy{DefaultTTL: 10 * time.Minute}, hdr: []string{"Cache-Control: no-store"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	// Set-Cookie is never shared; Vary: * never matches.
	{name: "Set-Cookie never stored", hdr: []string{"Cache-Control: public, max-age=60", "Set-Cookie: s=1"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},
	{name: "Vary star never stored", hdr: []string{"Cache-Control: max-age=60", "Vary: *"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}}},

	// Request directives, RFC 9111 §5.2.1.
	{name: "request no-cache revalidates", hdr: []string{"Cache-Control: max-age=60", `ETag: "a"`}, steps: []step{
		{0, nil, "MISS", 1, 0}, {time.Second, []string{"Cache-Control: no-cache"}, "REVALIDATED", 2, 0}, {time.Second, nil, "HIT", 2, 0}}},
	{name: "Pragma no-cache revalidates", hdr: []string{"Cache-Control: max-age=60", `ETag: "a"`}, steps: []step{
		{0, nil, "MISS", 1, 0}, {time.Second, []string{"Pragma: no-cache"}, "REVALIDATED", 2, 0}}},
	{name: "IgnoreRequestCacheControl", pol: Policy{IgnoreRequestCacheControl: true}, hdr: []string{"Cache-Control: max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {time.Second, []string{"Cache-Control: no-cache"}, "HIT", 1, 0}}},
	{name: "request max-age", hdr: []string{"Cache-Control: max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {20 * time.Second, []string{"Cache-Control: max-age=10"}, "MISS", 2, 0}, {0, []string{"Cache-Control: max-age=10"}, "HIT", 2, 0}}},
	{name: "request min-fresh", hdr: []string{"Cache-Control: max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {20 * time.Second, []string{"Cache-Control: min-fresh=30"}, "HIT", 1, 0}, {0, []string{"Cache-Control: min-fresh=50"}, "MISS", 2, 0}}},
	{name: "request max-stale", hdr: []string{"Cache-Control: max-age=10"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {20 * time.Second, []string{"Cache-Control: max-stale=30"}, "STALE", 1, 0},
		{0, []string{"Cache-Control: max-stale=5"}, "MISS", 2, 0}}},
	{name: "request max-stale without value", hdr: []string{"Cache-Control: max-age=10"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {time.Hour, []string{"Cache-Control: max-stale"}, "STALE", 1, 0}}},
	// §5.2.2.2, §5.2.2.8, §5.2.2.10: no stale serving at all.
	{name: "max-stale refused by must-revalidate", hdr: []string{"Cache-Control: max-age=10, must-revalidate"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {20 * time.Second, []string{"Cache-Control: max-stale"}, "MISS", 2, 0}}},
	{name: "max-stale refused by proxy-revalidate", hdr: []string{"Cache-Control: max-age=10, proxy-revalidate"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {20 * time.Second, []string{"Cache-Control: max-stale"}, "MISS", 2, 0}}},
	{name: "max-stale refused by s-maxage", hdr: []string{"Cache-Control: s-maxage=10"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {20 * time.Second, []string{"Cache-Control: max-stale"}, "MISS", 2, 0}}},
	{name: "only-if-cached when cold", steps: []step{
		{0, []string{"Cache-Control: only-if-cached"}, "MISS", 0, 504}}},
	{name: "only-if-cached when stored", hdr: []string{"Cache-Control: max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, []string{"Cache-Control: only-if-cached"}, "HIT", 1, 0}}},
	{name: "request no-store", hdr: []string{"Cache-Control: max-age=60"}, steps: []step{
		{0, []string{"Cache-Control: no-store"}, "MISS", 1, 0}, {0, nil, "MISS", 2, 0}, {0, nil, "HIT", 2, 0}}},

	// §3.5: Authorization.
	{name: "Authorization not stored", hdr: []string{"Cache-Control: max-age=60"}, steps: []step{
		{0, []string{"Authorization: Bearer x"}, "MISS", 1, 0}, {0, []string{"Authorization: Bearer x"}, "MISS", 2, 0}}},
	{name: "Authorization with public", hdr: []string{"Cache-Control: public, max-age=60"}, steps: []step{
		{0, []string{"Authorization: Bearer x"}, "MISS", 1, 0}, {0, []string{"Authorization: Bearer y"}, "HIT", 1, 0}}},
	{name: "Authorization with s-maxage", hdr: []string{"Cache-Control: s-maxage=60"}, steps: []step{
		{0, []string{"Authorization: Bearer x"}, "MISS", 1, 0}, {0, nil, "HIT", 1, 0}}},
	{name: "Authorization with must-revalidate", hdr: []string{"Cache-Control: max-age=60, must-revalidate"}, steps: []step{
		{0, []string{"Authorization: Bearer x"}, "MISS", 1, 0}, {0, nil, "HIT", 1, 0}}},
	{name: "anonymous response not reused for Authorization", hdr: []string{"Cache-Control: max-age=60"}, steps: []step{
		{0, nil, "MISS", 1, 0}, {0, []string{"Authorization: Bearer x"}, "MISS", 2, 0}, {0, nil, "HIT", 2, 0}}},
}

func TestCacheControl(t *testing.T) {
	for _, tc := range cacheControlCases {
		t.Run(tc.name, func(t *testing.T) {
			status := tc.status
			if status == 0 {
				status = http.StatusOK
			}
			e := newEnv(t, Options{}, tc.pol, nil)
			e.setHandler(versioned(&e.hits, status, tc.hdr...))
			for i, s := range tc.steps {
				e.clk.Advance(s.advance)
				res := e.get("/page", s.req...)
				want := s.status
				if want == 0 {
					want = status
				}
				if res.status != want || res.x() != s.wantX || e.hits.Load() != s.wantHits {
					t.Fatalf("step %d: status %d X-Cache %q origin hits %d; want %d %q %d (Cache-Status %q)",
						i, res.status, res.x(), e.hits.Load(), want, s.wantX, s.wantHits, res.header.Get("Cache-Status"))
				}
			}
		})
	}
}
