package cache

import (
	"net/http"
	"testing"
	"time"
)

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		cc   []string
		want respDirectives
	}{
		{[]string{"max-age=60, public"}, respDirectives{maxAge: time.Minute, hasMaxAge: true, public: true}},
		{[]string{"MAX-AGE=60", "s-maxage=\"30\""}, respDirectives{maxAge: time.Minute, hasMaxAge: true, sMaxAge: 30 * time.Second, hasSMaxAge: true}},
		{[]string{`private="Set-Cookie, X-A", no-cache="X-B"`}, respDirectives{private: true, noCache: true}},
		{[]string{"max-age=abc"}, respDirectives{hasMaxAge: true, invalid: true}},
		{[]string{"max-age"}, respDirectives{hasMaxAge: true, invalid: true}},
		{[]string{"max-age=99999999999999"}, respDirectives{maxAge: maxDelta, hasMaxAge: true}},
		{[]string{"no-store, must-understand, must-revalidate, proxy-revalidate"}, respDirectives{noStore: true, mustUnderstand: true, mustRevalidate: true, proxyRevalidate: true}},
		{[]string{"stale-while-revalidate=30, stale-if-error=600"}, respDirectives{swr: 30 * time.Second, hasSWR: true, sie: 10 * time.Minute, hasSIE: true}},
		{[]string{" , ,max-age=1,"}, respDirectives{maxAge: time.Second, hasMaxAge: true}},
	} {
		if got := parseResponse(http.Header{"Cache-Control": tc.cc}); got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.cc, got, tc.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want reqDirectives
	}{
		{http.Header{"Pragma": {"no-cache"}}, reqDirectives{noCache: true}},
		{http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-age=5"}}, reqDirectives{maxAge: 5 * time.Second, hasMaxAge: true}},
		{http.Header{"Cache-Control": {"max-stale"}}, reqDirectives{hasMaxStale: true, maxStaleAny: true}},
		{http.Header{"Cache-Control": {"max-stale=10, min-fresh=3, only-if-cached, no-store"}}, reqDirectives{maxStale: 10 * time.Second, hasMaxStale: true, minFresh: 3 * time.Second, hasMinFresh: true, onlyIfCached: true, noStore: true}},
		{http.Header{"Cache-Control": {"max-age=x"}}, reqDirectives{hasMaxAge: true}},
	} {
		if got := parseRequest(tc.h); got != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.h, got, tc.want)
		}
	}
}
