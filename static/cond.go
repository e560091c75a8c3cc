package static

import (
	"net/http"
	"strings"
	"time"
)

// condResult is the outcome of one precondition: absent (not sent or
// unusable), true or false. As in net/http's fs.go, each header is its own
// small function and checkPreconditions applies them in the RFC's order.
type condResult uint8

const (
	condNone condResult = iota
	condTrue
	condFalse
)

// checkPreconditions evaluates the preconditions of RFC 9110 §13.2.2 in
// the order it prescribes and returns the status to answer with instead of
// the content: 0 (go on), 304 or 412. The header map is indexed with
// canonical keys directly; no canonicalisation or allocation per request.
func checkPreconditions(r *http.Request, v *variant, f *fileData) int {
	h := r.Header
	// Steps 1-2: If-Match, else If-Unmodified-Since.
	c := checkIfMatch(h["If-Match"], v.etag)
	if c == condNone {
		c = checkIfUnmodifiedSince(h["If-Unmodified-Since"], f.modTime)
	}
	if c == condFalse {
		return http.StatusPreconditionFailed
	}
	getOrHead := r.Method == http.MethodGet || r.Method == http.MethodHead
	// Steps 3-4: If-None-Match, else (GET/HEAD only) If-Modified-Since.
	switch checkIfNoneMatch(h["If-None-Match"], v.etag) {
	case condFalse:
		if getOrHead {
			return http.StatusNotModified
		}
		return http.StatusPreconditionFailed
	case condNone:
		if getOrHead && checkIfModifiedSince(h["If-Modified-Since"], f) == condFalse {
			return http.StatusNotModified
		}
	}
	return 0
}

// checkIfMatch (RFC 9110 §13.1.1): true if "*" or a strong match.
func checkIfMatch(vals []string, etag string) condResult {
	if len(vals) == 0 {
		return condNone
	}
	for _, v := range vals {
		if etagListHas(v, etag, true) {
			return condTrue
		}
	}
	return condFalse
}

// checkIfNoneMatch (RFC 9110 §13.1.2): false if "*" or a weak match.
func checkIfNoneMatch(vals []string, etag string) condResult {
	if len(vals) == 0 {
		return condNone
	}
	for _, v := range vals {
		if etagListHas(v, etag, false) {
			return condFalse
		}
	}
	return condTrue
}

// checkIfModifiedSince (RFC 9110 §13.1.3): false (not modified) when the
// file is not newer than the date. An invalid date is ignored. The common
// case, a client echoing our own Last-Modified, is a string comparison.
func checkIfModifiedSince(vals []string, f *fileData) condResult {
	if len(vals) == 0 || f.modTime.IsZero() {
		return condNone
	}
	if vals[0] == f.lastMod[0] {
		return condFalse
	}
	t, err := http.ParseTime(vals[0])
	if err != nil {
		return condNone
	}
	if f.modTime.Truncate(time.Second).After(t) {
		return condTrue
	}
	return condFalse
}

// checkIfUnmodifiedSince (RFC 9110 §13.1.4): false when the file is newer
// than the date. An invalid date is ignored.
func checkIfUnmodifiedSince(vals []string, mod time.Time) condResult {
	if len(vals) == 0 || mod.IsZero() {
		return condNone
	}
	t, err := http.ParseTime(vals[0])
	if err != nil {
		return condNone
	}
	if mod.Truncate(time.Second).After(t) {
		return condFalse
	}
	return condTrue
}

// checkIfRange (RFC 9110 §13.1.5): the Range applies only if the validator
// still matches — a strong ETag compared strongly, or a date equal to
// Last-Modified. condNone when absent; condFalse means send the whole file.
func checkIfRange(vals []string, v *variant, f *fileData) condResult {
	if len(vals) == 0 {
		return condNone
	}
	val := strings.TrimSpace(vals[0])
	if strings.HasPrefix(val, "W/") {
		return condFalse // weak tags never validate a range
	}
	if strings.HasPrefix(val, `"`) {
		if tag, _ := scanETag(val); tag != "" && tag == v.etag {
			return condTrue
		}
		return condFalse
	}
	if val == f.lastMod[0] {
		return condTrue
	}
	t, err := http.ParseTime(val)
	if err == nil && t.Equal(f.modTime.Truncate(time.Second)) {
		return condTrue
	}
	return condFalse
}

// etagListHas reports whether a comma-separated entity-tag list (or "*")
// contains etag, which is a quoted strong tag. With strong comparison a
// weak ("W/") list member never matches (RFC 9110 §8.8.3.2).
func etagListHas(list, etag string, strong bool) bool {
	for {
		list = strings.TrimLeft(list, " \t,")
		if list == "" {
			return false
		}
		if list[0] == '*' {
			return true
		}
		weak := strings.HasPrefix(list, "W/")
		if weak {
			list = list[2:]
		}
		var tag string
		tag, list = scanETag(list)
		if tag == "" {
			return false
		}
		if tag == etag && !(strong && weak) {
			return true
		}
	}
}

// scanETag splits a leading quoted entity-tag off s. A "W/" prefix is
// accepted and skipped (callers that care check it first). tag is "" when
// s does not start with a well-formed tag.
func scanETag(s string) (tag, rest string) {
	s = strings.TrimPrefix(s, "W/")
	if len(s) < 2 || s[0] != '"' {
		return "", ""
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], s[i+1:]
		case c == 0x21 || (c >= 0x23 && c <= 0x7E) || c >= 0x80:
		default:
			return "", ""
		}
	}
	return "", ""
}
