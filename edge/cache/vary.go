package cache

import (
	"net/http"
	"slices"
	"strings"
)

// appendSecondary appends the secondary key of a request for a response
// that varies on names (RFC 9111 §4.1): each named request field's values,
// joined and normalised, NUL-separated. Absent and empty fields match.
func appendSecondary(buf []byte, h http.Header, names []string) []byte {
	for i, name := range names {
		if i > 0 {
			buf = append(buf, 0)
		}
		vals := h[name]
		if name == "Accept-Encoding" {
			buf = appendAcceptEncoding(buf, vals)
			continue
		}
		for j, v := range vals {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, strings.TrimSpace(v)...)
		}
	}
	return buf
}

// appendAcceptEncoding normalises Accept-Encoding, whose member order and
// spacing carry no meaning: "gzip, deflate, br" and "br,gzip,deflate"
// select the same representation, so they share a variant. Codings are
// lower-cased, stripped of spaces and sorted.
func appendAcceptEncoding(buf []byte, vals []string) []byte {
	var arr [16]string
	toks := arr[:0]
	for _, v := range vals {
		for len(v) > 0 {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			if tok != "" {
				toks = append(toks, tok)
			}
		}
	}
	slices.SortFunc(toks, func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	})
	for i, t := range toks {
		if i > 0 {
			buf = append(buf, ',')
		}
		for j := 0; j < len(t); j++ {
			c := t[j]
			switch {
			case c == ' ' || c == '\t':
				continue
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			}
			buf = append(buf, c)
		}
	}
	return buf
}

// fullKey is an entry's identity: the primary key alone without Vary,
// else primary and secondary.
func fullKey(primary string, vary []string, secondary []byte) string {
	if len(vary) == 0 {
		return primary
	}
	return primary + "\x01" + string(secondary)
}
