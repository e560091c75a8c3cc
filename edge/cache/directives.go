package cache

import (
	"net/http"
	"strings"
	"time"
)

// maxDelta is the cap RFC 9111 §1.2.2 puts on delta-seconds: larger
// values are taken as 2^31 seconds.
const maxDelta = 2147483648 * time.Second

// respDirectives are the Cache-Control directives of a response that a
// shared cache acts on (RFC 9111 §5.2.2, RFC 5861).
type respDirectives struct {
	maxAge, sMaxAge       time.Duration
	hasMaxAge, hasSMaxAge bool
	// invalid is set when a freshness directive is malformed or repeated
	// with different values; the response is then treated as stale
	// (RFC 9111 §4.2.1, "consider responses that have invalid freshness
	// information to be stale").
	invalid bool

	noStore, noCache, private, public bool
	mustRevalidate, proxyRevalidate   bool
	mustUnderstand                    bool

	swr, sie       time.Duration // stale-while-revalidate, stale-if-error
	hasSWR, hasSIE bool
}

// reqDirectives are the Cache-Control directives of a request
// (RFC 9111 §5.2.1, RFC 5861 §4 for stale-if-error), plus Pragma: no-cache
// when the request has no Cache-Control (§5.4).
type reqDirectives struct {
	maxAge, maxStale, minFresh          time.Duration
	hasMaxAge, hasMaxStale, hasMinFresh bool
	maxStaleAny                         bool // max-stale without a value
	noCache, noStore, onlyIfCached      bool
	sie                                 time.Duration
	hasSIE                              bool
}

// parseResponse reads a response's Cache-Control field lines.
func parseResponse(h http.Header) respDirectives {
	var d respDirectives
	eachDirective(h["Cache-Control"], func(name, value string, hasValue bool) {
		switch name {
		case "max-age":
			d.maxAge, d.hasMaxAge = setDelta(d.maxAge, d.hasMaxAge, value, hasValue, &d.invalid)
		case "s-maxage":
			d.sMaxAge, d.hasSMaxAge = setDelta(d.sMaxAge, d.hasSMaxAge, value, hasValue, &d.invalid)
		case "no-store":
			d.noStore = true
		case "no-cache":
			// The qualified form (no-cache="Set-Cookie") is treated as the
			// unqualified one, which RFC 9111 §5.2.2.4 allows.
			d.noCache = true
		case "private":
			// Qualified or not: a shared cache does not store it.
			d.private = true
		case "public":
			d.public = true
		case "must-revalidate":
			d.mustRevalidate = true
		case "proxy-revalidate":
			d.proxyRevalidate = true
		case "must-understand":
			d.mustUnderstand = true
		case "stale-while-revalidate":
			if v, ok := parseDelta(value); ok && hasValue {
				d.swr, d.hasSWR = v, true
			}
		case "stale-if-error":
			if v, ok := parseDelta(value); ok && hasValue {
				d.sie, d.hasSIE = v, true
			}
		}
	})
	return d
}

// parseRequest reads a request's Cache-Control (or Pragma) field lines.
func parseRequest(h http.Header) reqDirectives {
	var d reqDirectives
	cc := h["Cache-Control"]
	if cc == nil {
		for _, v := range h["Pragma"] {
			if strings.Contains(strings.ToLower(v), "no-cache") {
				d.noCache = true
			}
		}
		return d
	}
	eachDirective(cc, func(name, value string, hasValue bool) {
		switch name {
		case "max-age":
			// The first value wins; an invalid one asks for age zero.
			if !d.hasMaxAge {
				v, _ := parseDelta(value)
				d.maxAge, d.hasMaxAge = v, true
			}
		case "max-stale":
			if !hasValue {
				d.hasMaxStale, d.maxStaleAny = true, true
			} else if v, ok := parseDelta(value); ok {
				d.maxStale, d.hasMaxStale = v, true
			}
		case "min-fresh":
			if v, ok := parseDelta(value); ok && hasValue {
				d.minFresh, d.hasMinFresh = v, true
			}
		case "no-cache":
			d.noCache = true
		case "no-store":
			d.noStore = true
		case "only-if-cached":
			d.onlyIfCached = true
		case "stale-if-error":
			if v, ok := parseDelta(value); ok && hasValue {
				d.sie, d.hasSIE = v, true
			}
		}
	})
	return d
}

// setDelta records a freshness directive, flagging malformed values and
// repeats with a different value.
func setDelta(cur time.Duration, had bool, value string, hasValue bool, invalid *bool) (time.Duration, bool) {
	v, ok := parseDelta(value)
	if !ok || !hasValue {
		*invalid = true
		return 0, true
	}
	if had && v != cur {
		*invalid = true
		return min(cur, v), true
	}
	return v, true
}

// parseDelta parses delta-seconds (RFC 9111 §1.2.2): digits only, capped.
func parseDelta(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	const limit = int64(maxDelta / time.Second)
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int64(c-'0'), limit) // n*10 cannot overflow: n ≤ 2^31
	}
	return time.Duration(n) * time.Second, true
}

// eachDirective calls fn for every directive in the field lines, with a
// lower-cased name and an unquoted value. Commas inside quoted strings
// (private="a, b") do not split.
func eachDirective(lines []string, fn func(name, value string, hasValue bool)) {
	for _, line := range lines {
		for len(line) > 0 {
			var item string
			item, line = nextItem(line)
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, value, hasValue := strings.Cut(item, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.TrimSpace(value)
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			fn(name, value, hasValue)
		}
	}
}

// nextItem splits off one comma-separated item, honouring quotes.
func nextItem(s string) (item, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case '\\':
			if quoted {
				i++
			}
		case ',':
			if !quoted {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

// fieldNames splits a list-valued field (Vary, Connection) into
// canonical header names.
func fieldNames(lines []string) []string {
	var out []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ",") {
			part = strings.TrimSpace(part)
			if part != "" {
				out = append(out, http.CanonicalHeaderKey(part))
			}
		}
	}
	return out
}
