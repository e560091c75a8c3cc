package static

import (
	"fmt"
	"strings"
)

// sidecarEnc is one configured precompressed encoding.
type sidecarEnc struct {
	name string   // content-coding token, e.g. "zstd"
	ext  string   // sidecar suffix, e.g. ".zst"
	hdr  []string // prepared Content-Encoding value
}

// sidecarExts maps Options.Precompressed names to file suffixes.
func sidecarExt(name string) (string, error) {
	switch name {
	case "zstd":
		return ".zst", nil
	case "br":
		return ".br", nil
	case "gzip":
		return ".gz", nil
	}
	return "", fmt.Errorf("unknown precompressed encoding %q (want zstd, br or gzip)", name)
}

// pickVariant returns the first sidecar (server preference order) that the
// Accept-Encoding values accept, else the identity variant.
func pickVariant(f *fileData, acceptEncoding []string) *variant {
	for i := range f.sidecars {
		if accepts(acceptEncoding, f.sidecars[i].enc) {
			return &f.sidecars[i]
		}
	}
	return &f.identity
}

// accepts reports whether Accept-Encoding (RFC 9110 §12.5.3) allows coding:
// listed with q > 0, or not listed and "*" has q > 0. "x-gzip" counts as
// gzip. It allocates nothing: it runs per request on sidecar-bearing files.
func accepts(values []string, coding string) bool {
	star := false
	for _, v := range values {
		for v != "" {
			var item string
			if i := strings.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				item, v = v, ""
			}
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			ok := qNonZero(params)
			switch {
			case strings.EqualFold(name, coding),
				coding == "gzip" && strings.EqualFold(name, "x-gzip"):
				// An explicit listing beats "*", whatever its q.
				return ok
			case name == "*":
				star = ok
			}
		}
	}
	return star
}

// qNonZero reports whether the parameters' q-value is absent or above 0.
// Anything that is not a weight parameter is ignored.
func qNonZero(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, val, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		val = strings.TrimSpace(val)
		// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ):
		// zero exactly when every digit is '0'.
		for i := 0; i < len(val); i++ {
			if c := val[i]; c >= '1' && c <= '9' {
				return true
			}
		}
		return false
	}
	return true
}
