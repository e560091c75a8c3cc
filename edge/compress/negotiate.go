package compress

import "strings"

// qUnset marks a coding the header does not mention.
const qUnset = -1

// negotiate picks the content coding for a response per RFC 9110 §12.5.3
// and returns its index in names, or -1 for no coding (identity).
//
//   - Each coding gets the q-value of its own entry ("x-gzip" counts as
//     gzip), else that of "*", else it is not acceptable. q=0 excludes.
//   - The highest q wins; ties go to the earlier name (server preference).
//   - identity competes with the value of its own entry, else of "*": a
//     client sending "gzip;q=0.5, identity" gets identity. When identity is
//     not mentioned at all it does not compete, so a lone "br;q=0.1" still
//     gets br. Equal weights favour the coding.
//   - Entries that do not parse (a bad q-value, an empty name) are ignored;
//     no input makes it panic or allocate.
//
// values are the Accept-Encoding field lines. No lines means no coding:
// the RFC allows any coding then, but clients that send no Accept-Encoding
// are mostly old tools that cannot decode, so, like every common server,
// tandem sends identity.
func negotiate(values []string, names []string) int {
	if len(values) == 0 || len(names) == 0 {
		return -1
	}
	var qs [len(codecs)]int // per names index; names never exceeds the codecs
	for i := range names {
		qs[i] = qUnset
	}
	star, identity := qUnset, qUnset
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			q, ok := parseQ(params)
			if !ok {
				continue
			}
			switch {
			case name == "*":
				star = max(star, q)
			case strings.EqualFold(name, "identity"):
				identity = max(identity, q)
			default:
				if strings.EqualFold(name, "x-gzip") {
					name = "gzip"
				}
				for i, n := range names {
					if i < len(qs) && strings.EqualFold(name, n) {
						qs[i] = max(qs[i], q)
					}
				}
			}
		}
	}
	best, bestQ := -1, 0
	for i := range names {
		if i >= len(qs) {
			break
		}
		q := qs[i]
		if q == qUnset {
			q = star
		}
		if q > bestQ {
			best, bestQ = i, q
		}
	}
	if best < 0 {
		return -1
	}
	if identity == qUnset {
		identity = star
	}
	if identity > bestQ {
		return -1
	}
	return best
}

// parseQ reads the weight from an entry's parameters (everything after the
// first ';') as thousandths, 0-1000. No weight means 1000. ok is false when
// a weight is present but is not a qvalue:
//
//	qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
//
// Other parameters are ignored.
func parseQ(params string) (q int, ok bool) {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, val, found := strings.Cut(p, "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		return parseQValue(strings.TrimSpace(val))
	}
	return 1000, true
}

func parseQValue(s string) (int, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' || len(s) > 5 {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}
