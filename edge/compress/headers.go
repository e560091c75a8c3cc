package compress

import (
	"net/http"
	"strconv"
	"strings"
)

// typePattern is one parsed Options.Types entry.
type typePattern struct {
	exact  string // "application/json"; "" for the wildcard forms
	prefix string // "text/" for "text/*", "application/" for "application/*+json"
	suffix string // "+json" for "application/*+json"
	any    bool   // "*/*"
}

func parseTypePattern(t string) typePattern {
	t = strings.ToLower(t)
	if t == "*/*" {
		return typePattern{any: true}
	}
	main, sub, _ := strings.Cut(t, "/")
	switch {
	case sub == "*":
		return typePattern{prefix: main + "/"}
	case strings.HasPrefix(sub, "*+"):
		return typePattern{prefix: main + "/", suffix: sub[1:]}
	}
	return typePattern{exact: t}
}

func (p *typePattern) match(mt string) bool {
	switch {
	case p.any:
		return true
	case p.exact != "":
		return strings.EqualFold(mt, p.exact)
	}
	if len(mt) < len(p.prefix)+len(p.suffix) || !strings.EqualFold(mt[:len(p.prefix)], p.prefix) {
		return false
	}
	return p.suffix == "" || strings.EqualFold(mt[len(mt)-len(p.suffix):], p.suffix)
}

// mediaType returns a Content-Type value without parameters or spaces.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// hasToken reports whether a comma-separated header (Vary, Cache-Control)
// lists token, case-insensitively. Directive arguments ("max-age=0") are
// not tokens and never match.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(item), token) {
				return true
			}
		}
	}
	return false
}

// varyAE is shared; header values are replaced, never appended to in place.
var varyAE = []string{"Accept-Encoding"}

// addVary merges Accept-Encoding into Vary (RFC 9110 §12.5.5): not added
// twice, and not at all under "Vary: *", which already covers it. The
// existing slice is never written to: handlers (static) assign shared,
// prepared slices to their headers.
func addVary(h http.Header) {
	old := h["Vary"]
	if len(old) == 0 {
		h["Vary"] = varyAE
		return
	}
	if hasToken(old, "Accept-Encoding") || hasToken(old, "*") {
		return
	}
	v := make([]string, len(old)+1)
	copy(v, old)
	v[len(old)] = varyAE[0]
	h["Vary"] = v
}

// weakenETag turns a strong ETag into a weak one (RFC 9110 §8.8.1): the
// encoded bytes differ from the identity bytes, so a strong validator
// shared by both would be wrong. Weak tags still satisfy If-None-Match,
// which compares weakly, so revalidation keeps working against the
// handler's own strong tag. They never satisfy If-Range, which is fine:
// ranges are never compressed.
func weakenETag(h http.Header) {
	v := h["Etag"]
	if len(v) == 0 || !strings.HasPrefix(v[0], `"`) {
		return // absent, already weak, or malformed: leave it alone
	}
	h["Etag"] = []string{"W/" + v[0]}
}

// contentLength returns the Content-Length header's value, or -1 when it is
// absent or unusable.
func contentLength(h http.Header) int64 {
	v := h["Content-Length"]
	if len(v) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
