package cache

import (
	"crypto/subtle"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// PurgeHandler is the purge endpoint, for the edge to mount. It answers
//
//	PURGE /path?query           (Host: the site)    purge that URL
//	POST  ...?url=URL[&url=...]                     purge URLs: absolute, or a path on Host;
//	                                                a trailing * purges a prefix
//	POST  ...?tag=TAG[&tag=...]                     purge by Surrogate-Key tag
//	POST  ...?all=1                                 purge everything
//
// with 200 and {"purged":N}. Clients must come from Options.PurgeAllow
// (403 otherwise) and, when Options.PurgeToken is set, send
// "Authorization: Bearer TOKEN" (401 otherwise). Client errors are
// generic; details go to the log.
func (c *Cache) PurgeHandler() http.Handler { return purgeHandler{c} }

type purgeHandler struct{ c *Cache }

func (p purgeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := p.c
	w.Header().Set("Cache-Control", "no-store")
	if !c.purgeAllowed(r) {
		c.log.Warn("cache: purge refused: client not allowed", zap.String("remote", r.RemoteAddr))
		http.Error(w, "403 forbidden", http.StatusForbidden)
		return
	}
	if !c.purgeAuthorized(r) {
		c.log.Warn("cache: purge refused: bad or missing token", zap.String("remote", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Bearer realm="tandem purge"`)
		http.Error(w, "401 unauthorized", http.StatusUnauthorized)
		return
	}
	n := 0
	switch r.Method {
	case "PURGE":
		n = c.PurgeURL(r.Host, r.URL.RequestURI())
	case http.MethodPost:
		q := r.URL.Query()
		if q["url"] == nil && q["tag"] == nil && q.Get("all") != "1" {
			http.Error(w, "400 give url=, tag= or all=1", http.StatusBadRequest)
			return
		}
		for _, raw := range q["url"] {
			host, uri, ok := purgeTarget(raw, r.Host)
			if !ok {
				http.Error(w, "400 bad url", http.StatusBadRequest)
				return
			}
			n += c.PurgeURL(host, uri)
		}
		for _, tag := range q["tag"] {
			n += c.PurgeTag(tag)
		}
		if q.Get("all") == "1" {
			n += c.PurgeAll()
		}
	default:
		w.Header().Set("Allow", "PURGE, POST")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	c.log.Info("cache: purged", zap.String("remote", r.RemoteAddr), zap.String("request", r.Method+" "+r.URL.RequestURI()), zap.Int("entries", n))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"purged":` + strconv.Itoa(n) + "}\n"))
}

// purgeTarget splits a url= value into host and URI; a bare path is on
// the purge request's own Host.
func purgeTarget(raw, host string) (string, string, bool) {
	if strings.HasPrefix(raw, "/") {
		return host, raw, true
	}
	star := strings.HasSuffix(raw, "*")
	u, err := url.Parse(strings.TrimSuffix(raw, "*"))
	if err != nil || u.Host == "" {
		return "", "", false
	}
	uri := u.RequestURI()
	if star {
		uri += "*"
	}
	return u.Host, uri, true
}

// purgeAllowed checks the client address against PurgeAllow.
func (c *Cache) purgeAllowed(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range c.opts.PurgeAllow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// purgeAuthorized checks the bearer token in constant time.
func (c *Cache) purgeAuthorized(r *http.Request) bool {
	if c.opts.PurgeToken == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(c.opts.PurgeToken)) == 1
}

var _ http.Handler = purgeHandler{}
