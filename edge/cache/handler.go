package cache

import (
	"net/http"
	"sync"
	"time"
)

// handler is one location's view of the cache: Wrap's result.
type handler struct {
	c    *Cache
	p    *compiled
	next http.Handler
}

// keyBufs recycles key buffers so a hit does not allocate its key.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// ServeHTTP routes by method: GET and HEAD use the store, unsafe methods
// invalidate it (RFC 9111 §4.4), the others pass by.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if r.Header["Upgrade"] != nil {
			h.bypass(w, r, fwdBypass)
			return
		}
		h.serveCacheable(w, r)
	case http.MethodOptions, http.MethodTrace, http.MethodConnect:
		h.bypass(w, r, fwdMethod)
	default:
		h.serveUnsafe(w, r)
	}
}

// bypass hands the request on untouched but for the status headers.
func (h *handler) bypass(w http.ResponseWriter, r *http.Request, fwd string) {
	h.c.stats.bypass.Add(1)
	h.c.setStatus(w.Header(), xBypass, cacheStatus{fwd: fwd})
	h.next.ServeHTTP(w, r)
}

// action is what a stored entry allows for a request.
type action uint8

const (
	actFresh    action = iota // serve it
	actStale                  // serve it stale: the client allows (max-stale)
	actSWR                    // serve it stale and refresh in the background
	actValidate               // revalidate (or refetch) before use
)

// serveCacheable answers a GET or HEAD: from the store when it can, else
// through one coalesced upstream fetch per key.
func (h *handler) serveCacheable(w http.ResponseWriter, r *http.Request) {
	c := h.c
	var rd reqDirectives
	if !h.p.IgnoreRequestCacheControl && (r.Header["Cache-Control"] != nil || r.Header["Pragma"] != nil) {
		rd = parseRequest(r.Header)
	}
	bp := keyBufs.Get().(*[]byte)
	kb := h.p.key.append((*bp)[:0], r)
	defer func() {
		*bp = kb[:0]
		keyBufs.Put(bp)
	}()

	auth := r.Header["Authorization"] != nil
	// These requests neither lead nor join a coalesced fetch: their
	// response is not for sharing (no-store, Authorization) or is partial.
	solo := rd.noStore || auth || r.Header["Range"] != nil
	var collapsed *entry // stored by the fetch this request waited on
	var collapsedFwd string
	for attempt := 1; ; attempt++ {
		e, key, fwd := c.lookup(kb, r)
		if e != nil && e == collapsed && h.serveCollapsed(w, r, e, collapsedFwd) {
			return
		}
		if e != nil {
			var served bool
			if served, e, fwd = h.tryStored(w, r, e, &rd, auth); served {
				return
			}
		}
		f := fetch{key: key, primary: string(kb), stale: e, fwd: fwd, store: !rd.noStore, rd: rd}
		if rd.onlyIfCached {
			// RFC 9111 §5.2.1.7: a stored response or 504.
			c.stats.misses.Add(1)
			c.setStatus(w.Header(), xMiss, cacheStatus{detail: "only-if-cached"})
			http.Error(w, "504 not in cache", http.StatusGatewayTimeout)
			return
		}
		if solo || (e == nil && c.passing(key)) {
			f.solo = true
			h.forward(w, r, f)
			return
		}
		fl, leader := c.join(key)
		if leader {
			f.flight = fl
			h.forward(w, r, f)
			return
		}
		res, stored := c.wait(r.Context(), fl)
		switch {
		case res == resGone:
			return
		case res == resStored && attempt < maxAttempts:
			collapsed, collapsedFwd = stored, fwd
			continue
		case res == resRetry && attempt < maxAttempts:
			continue
		case res == resStale && e != nil && h.serveStaleAfterError(w, r, e, &rd, fl.status):
			return
		}
		// Not storable, timed out or repeatedly cut off: go upstream
		// uncoalesced (the response is still stored if it can be).
		f.solo = true
		h.forward(w, r, f)
		return
	}
}

// tryStored serves e if the request allows it. Otherwise it returns the
// entry to revalidate (nil when e is unusable) and the Cache-Status fwd
// reason.
func (h *handler) tryStored(w http.ResponseWriter, r *http.Request, e *entry, rd *reqDirectives, auth bool) (served bool, stale *entry, fwd string) {
	if auth && !e.shareable {
		// A response stored from an anonymous request is not reused for an
		// authenticated one unless it said it is shareable.
		return false, nil, fwdRequest
	}
	now := h.c.now()
	act, why := h.decide(e, rd, now)
	if act == actValidate {
		return false, e, why
	}
	if !h.serveStored(w, r, e, act, now) {
		return false, nil, fwdURIMiss // its disk body vanished
	}
	if act == actSWR {
		h.refresh(r, e)
	}
	return true, nil, ""
}

// serveStaleAfterError answers a request whose coalesced fetch failed
// with e, if stale-if-error allows.
func (h *handler) serveStaleAfterError(w http.ResponseWriter, r *http.Request, e *entry, rd *reqDirectives, status int) bool {
	now := h.c.now()
	if !h.canServeOnError(e, rd, now) {
		return false
	}
	s := cacheStatus{fwd: fwdStale, fwdStatus: status, ttl: e.lifetime - e.currentAge(now), hasTTL: true, detail: "stale-if-error"}
	if !h.serveStoredAs(w, r, e, now, xStale, s) {
		return false
	}
	h.c.stats.stale.Add(1)
	return true
}

// decide applies RFC 9111 §4.2 (freshness), §4.2.4 (serving stale) and
// the request directives of §5.2.1 to a stored entry.
func (h *handler) decide(e *entry, rd *reqDirectives, now time.Time) (action, string) {
	age := e.currentAge(now)
	switch {
	case e.noCache:
		return actValidate, fwdStale
	case rd.noCache:
		return actValidate, fwdRequest
	case rd.hasMaxAge && age > rd.maxAge:
		return actValidate, fwdRequest
	case rd.hasMinFresh && e.lifetime-age < rd.minFresh:
		return actValidate, fwdRequest
	case age < e.lifetime:
		return actFresh, ""
	}
	staleness := age - e.lifetime
	if rd.hasMaxStale && !e.noStale && !e.sMaxAge && (rd.maxStaleAny || staleness <= rd.maxStale) {
		return actStale, ""
	}
	if w := h.swrWindow(e); w > 0 && staleness <= w {
		return actSWR, ""
	}
	return actValidate, fwdStale
}

// swrWindow is how long past its freshness e may be served while it is
// refreshed. must-revalidate, proxy-revalidate and no-cache forbid it;
// s-maxage too unless the response itself says stale-while-revalidate
// (RFC 5861's explicit permission, as CDNs read it).
func (h *handler) swrWindow(e *entry) time.Duration {
	switch {
	case e.noStale:
		return 0
	case e.hasSWR:
		return e.swr
	case e.sMaxAge:
		return 0
	}
	return h.p.StaleWhileRevalidate
}

// sieWindow is how long past its freshness e may be served when the
// upstream fails, by the response's or the request's stale-if-error, or
// else by Policy.StaleIfError; with the same exclusions as swrWindow.
func (h *handler) sieWindow(e *entry, rd *reqDirectives) time.Duration {
	if e.noStale {
		return 0
	}
	if e.hasSIE || rd.hasSIE {
		return max(e.sie, rd.sie)
	}
	if e.sMaxAge {
		return 0
	}
	return h.p.StaleIfError
}

// canServeOnError reports whether e may answer r when the upstream fails.
func (h *handler) canServeOnError(e *entry, rd *reqDirectives, now time.Time) bool {
	w := h.sieWindow(e, rd)
	return w > 0 && e.currentAge(now)-e.lifetime <= w
}

// serveStored answers from e for a fresh, stale or SWR decision.
func (h *handler) serveStored(w http.ResponseWriter, r *http.Request, e *entry, act action, now time.Time) bool {
	ttl := e.lifetime - e.currentAge(now)
	switch act {
	case actFresh:
		if !h.serveStoredAs(w, r, e, now, xHit, cacheStatus{hit: true, ttl: ttl, hasTTL: true}) {
			return false
		}
		h.c.stats.hits.Add(1)
	default:
		detail := "max-stale"
		if act == actSWR {
			detail = "stale-while-revalidate"
		}
		if !h.serveStoredAs(w, r, e, now, xStale, cacheStatus{hit: true, ttl: ttl, hasTTL: true, detail: detail}) {
			return false
		}
		h.c.stats.stale.Add(1)
	}
	return true
}

// serveCollapsed answers a request that waited on another's fetch.
func (h *handler) serveCollapsed(w http.ResponseWriter, r *http.Request, e *entry, fwd string) bool {
	now := h.c.now()
	ttl := e.lifetime - e.currentAge(now)
	if !h.serveStoredAs(w, r, e, now, xHit, cacheStatus{fwd: fwd, collapsed: true, ttl: ttl, hasTTL: true}) {
		return false
	}
	h.c.stats.hits.Add(1)
	return true
}

var _ http.Handler = (*handler)(nil)
