package cache

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// entry is one stored response (one variant of one key). It is immutable
// once stored: a 304 revalidation stores a new entry sharing the body, so
// hits read it without locks. Only removed and fileKept change, under
// Cache.mu.
type entry struct {
	key       string   // flight and identity key: primary, plus "\x01" secondary when varied
	primary   string   // the key template's output
	secondary string   // the Vary'd request header values; "" without Vary
	vary      []string // canonical, sorted names from the response's Vary
	url       string   // host and request URI, for purge and invalidation
	tags      []string // from Surrogate-Key

	status  int
	header  http.Header // cleaned; every value slice has len == cap
	body    []byte      // nil when the body is on disk
	file    string      // disk tier path; "" for memory bodies
	bodyLen int64

	etag, lastModified string

	responseTime time.Time
	initialAge   time.Duration // corrected_initial_age, RFC 9111 §4.2.3
	lifetime     time.Duration // freshness_lifetime, RFC 9111 §4.2.1

	noCache   bool // must be validated before every use (RFC 9111 §5.2.2.4)
	noStale   bool // must-revalidate, proxy-revalidate or no-cache: never served stale
	sMaxAge   bool // s-maxage implies proxy-revalidate unless stale directives say otherwise
	shareable bool // public, s-maxage or must-revalidate: usable for requests with Authorization
	swr, sie  time.Duration
	hasSWR    bool
	hasSIE    bool

	size int64 // accounted memory bytes

	removed  bool // guarded by Cache.mu
	fileKept bool // the file passed to a replacing entry; guarded by Cache.mu
}

// currentAge is RFC 9111 §4.2.3's current_age.
func (e *entry) currentAge(now time.Time) time.Duration {
	resident := now.Sub(e.responseTime)
	if resident < 0 {
		resident = 0
	}
	return e.initialAge + resident
}

// hasValidator reports whether the entry can be revalidated.
func (e *entry) hasValidator() bool { return e.etag != "" || e.lastModified != "" }

// Reasons a response is not stored; response-side ones mark the key as
// "pass" for Options.PassTTL.
const (
	whyStatus       = "status"
	whyNoStore      = "no-store"
	whyPrivate      = "private"
	whyAuth         = "authorization"
	whySetCookie    = "set-cookie"
	whyVaryStar     = "vary-star"
	whyTrailers     = "trailers"
	whyNotCacheable = "not-cacheable"
	whyNoValidator  = "no-validator"
	whyTooLarge     = "too-large"
	whyStreaming    = "event-stream"
)

// cacheableByDefault are the statuses RFC 9110 §15.1 lets a cache store
// with heuristic freshness.
func cacheableByDefault(status int) bool {
	switch status {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// defaultTTLStatus are the statuses Policy.DefaultTTL applies to: the
// successful and permanent ones. Errors and temporary redirects need an
// explicit lifetime to be cached.
func defaultTTLStatus(status int) bool {
	switch status {
	case 200, 203, 204, 300, 301, 308:
		return true
	}
	return false
}

// understood are the statuses whose caching rules this cache implements,
// for must-understand (RFC 9111 §5.2.2.3).
func understood(status int) bool {
	return cacheableByDefault(status) || status == 302 || status == 303 || status == 307
}

// analysis is what a response's head says about storing it.
type analysis struct {
	why       string // "" when storable
	d         respDirectives
	lifetime  time.Duration
	date      time.Time
	etag, lm  string
	ageValue  time.Duration
	shareable bool
}

// analyze applies RFC 9111 §3 (storing) and §4.2.1-2 (freshness) to a
// response head. auth reports an Authorization header in the request.
func (h *handler) analyze(status int, hdr http.Header, auth bool, respTime time.Time) analysis {
	a := analysis{d: parseResponse(hdr)}
	d := &a.d
	a.etag, a.lm = headerValue(hdr, "Etag"), headerValue(hdr, "Last-Modified")
	a.date = respTime
	if t, err := http.ParseTime(headerValue(hdr, "Date")); err == nil {
		a.date = t
	}
	a.shareable = d.public || d.hasSMaxAge || d.mustRevalidate
	switch {
	case status < 200 || status == http.StatusPartialContent || status == http.StatusNotModified:
		a.why = whyStatus
	case d.mustUnderstand && !understood(status):
		a.why = whyStatus
	case d.noStore && !d.mustUnderstand:
		a.why = whyNoStore
	case d.private:
		a.why = whyPrivate
	case auth && !a.shareable:
		a.why = whyAuth // RFC 9111 §3.5
	case hdr["Set-Cookie"] != nil:
		a.why = whySetCookie
	case hasTrailers(hdr):
		a.why = whyTrailers
	case strings.HasPrefix(headerValue(hdr, "Content-Type"), "text/event-stream"):
		a.why = whyStreaming // an endless stream would hold coalesced waiters
	}
	if a.why != "" {
		return a
	}
	for _, v := range fieldNames(hdr["Vary"]) {
		if v == "*" {
			a.why = whyVaryStar // never matches a later request (RFC 9111 §4.1)
			return a
		}
	}
	explicit := true
	switch {
	case d.invalid:
		a.lifetime = 0
	case d.hasSMaxAge:
		a.lifetime = d.sMaxAge
	case d.hasMaxAge:
		a.lifetime = d.maxAge
	case hdr["Expires"] != nil:
		// An invalid Expires (such as "0") means already expired.
		if t, err := http.ParseTime(hdr["Expires"][0]); err == nil {
			a.lifetime = max(0, t.Sub(a.date))
		}
	default:
		explicit = false
	}
	if !explicit {
		if !cacheableByDefault(status) && !d.public {
			a.why = whyNotCacheable
			return a
		}
		a.lifetime = h.heuristic(status, a.date, a.lm)
	}
	if v, ok := parseDelta(headerValue(hdr, "Age")); ok {
		a.ageValue = v
	}
	hasValidator := a.etag != "" || a.lm != ""
	switch {
	case d.noCache && !hasValidator:
		// Every use would be a full fetch that replaces it.
		a.why = whyNoValidator
	case a.lifetime <= 0 && !hasValidator && !d.hasSIE && h.p.StaleIfError == 0:
		// Stale on arrival and nothing to revalidate or fall back on.
		a.why = whyNoValidator
	}
	return a
}

// heuristic is the freshness of a response without explicit freshness:
// Policy.DefaultTTL where it applies, else 10% of the time since
// Last-Modified (RFC 9111 §4.2.2), capped by Options.MaxHeuristic.
func (h *handler) heuristic(status int, date time.Time, lm string) time.Duration {
	if h.p.DefaultTTL > 0 && defaultTTLStatus(status) {
		return h.p.DefaultTTL
	}
	t, err := http.ParseTime(lm)
	if err != nil || !t.Before(date) {
		return 0
	}
	return min(date.Sub(t)/10, h.c.opts.MaxHeuristic)
}

// newEntry builds an entry (without its body) from an analysed head.
func (h *handler) newEntry(status int, hdr http.Header, a *analysis, reqTime, respTime time.Time) *entry {
	e := &entry{
		status:       status,
		header:       cleanHeader(hdr, respTime),
		etag:         a.etag,
		lastModified: a.lm,
		responseTime: respTime,
		lifetime:     a.lifetime,
		noCache:      a.d.noCache,
		noStale:      a.d.mustRevalidate || a.d.proxyRevalidate || a.d.noCache,
		sMaxAge:      a.d.hasSMaxAge,
		shareable:    a.shareable,
		swr:          a.d.swr,
		sie:          a.d.sie,
		hasSWR:       a.d.hasSWR,
		hasSIE:       a.d.hasSIE,
	}
	// RFC 9111 §4.2.3.
	apparent := max(0, respTime.Sub(a.date))
	corrected := a.ageValue + max(0, respTime.Sub(reqTime))
	e.initialAge = max(apparent, corrected)
	e.vary = varyNames(hdr)
	e.tags = surrogateKeys(hdr)
	return e
}

// hopByHop are the fields a cache never stores (RFC 9110 §7.6.1), with
// the cache's own status fields and Age, which is recomputed.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Age", "X-Cache", "Cache-Status",
}

// cleanHeader copies a response head for storage: without hop-by-hop
// fields (and those Connection names), with Date, every slice clipped so
// that a handler appending to a hit's header cannot write into it.
func cleanHeader(hdr http.Header, respTime time.Time) http.Header {
	out := hdr.Clone() // Clone's value slices are already clipped
	for _, name := range fieldNames(hdr["Connection"]) {
		delete(out, name)
	}
	for _, k := range hopByHop {
		delete(out, k)
	}
	if out["Date"] == nil {
		out["Date"] = []string{respTime.UTC().Format(http.TimeFormat)}
	}
	return out
}

// mergeHeaders applies a 304's fields to a stored head (RFC 9111 §3.2):
// each field in the 304 replaces the stored one, except hop-by-hop
// fields and Content-Length.
func mergeHeaders(stored, fresh http.Header) http.Header {
	out := stored.Clone()
	skip := fieldNames(fresh["Connection"])
	for k, v := range fresh {
		if k == "Content-Length" || slices.Contains(hopByHop, k) || slices.Contains(skip, k) {
			continue
		}
		out[k] = slices.Clip(slices.Clone(v))
	}
	// Age is read from the merged head by analyze, so keep the 304's.
	if v := fresh["Age"]; v != nil {
		out["Age"] = v
	}
	return out
}

func hasTrailers(hdr http.Header) bool {
	if hdr["Trailer"] != nil {
		return true
	}
	for k := range hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// varyNames are the response's Vary names, canonical, sorted, deduped.
func varyNames(hdr http.Header) []string {
	names := fieldNames(hdr["Vary"])
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return slices.Clip(slices.Compact(names))
}

// surrogateKeys are the purge tags of a response.
func surrogateKeys(hdr http.Header) []string {
	var tags []string
	for _, v := range hdr["Surrogate-Key"] {
		tags = append(tags, strings.Fields(v)...)
	}
	slices.Sort(tags)
	return slices.Clip(slices.Compact(tags))
}

func headerValue(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Memory estimates for the byte bound. They are deliberately generous:
// the bound is what an operator sizes the heap by.
const (
	entryOverhead  = 512 // entry struct, LRU element, group and index map slots
	headerOverhead = 208 // map header and buckets
	fieldOverhead  = 64  // key string header, slice header, bucket slot
	valueOverhead  = 16  // string header
	tagOverhead    = 96  // tag index slot and set
)

// accountSize sets e.size from its keys, header, tags and memory body.
func (e *entry) accountSize() {
	n := int64(entryOverhead + len(e.key) + len(e.primary) + len(e.secondary) + len(e.url) + headerOverhead)
	for k, vs := range e.header {
		n += int64(len(k) + fieldOverhead)
		for _, v := range vs {
			n += int64(len(v) + valueOverhead)
		}
	}
	for _, t := range e.tags {
		n += int64(2*len(t) + tagOverhead)
	}
	for _, v := range e.vary {
		n += int64(len(v) + valueOverhead)
	}
	n += int64(cap(e.body))
	e.size = n
}
