package cache

import (
	"net/http"
	"strings"

	"github.com/tandem-server/tandem/conf/cachekey"
)

// keyTemplate is a compiled Policy.Key.
type keyTemplate struct {
	parts []cachekey.Part
}

// compileKey parses a template such as "$scheme://$host$request_uri"
// (syntax in conf/cachekey).
func compileKey(tpl string) (*keyTemplate, error) {
	parts, err := cachekey.Parse(tpl)
	if err != nil {
		return nil, err
	}
	return &keyTemplate{parts: parts}, nil
}

// append writes r's key into buf. It does not allocate for the default
// template.
func (k *keyTemplate) append(buf []byte, r *http.Request) []byte {
	for _, p := range k.parts {
		switch p.Kind {
		case cachekey.Literal:
			buf = append(buf, p.Text...)
		case cachekey.Scheme:
			if r.TLS != nil {
				buf = append(buf, "https"...)
			} else {
				buf = append(buf, "http"...)
			}
		case cachekey.Host:
			buf = appendHost(buf, r.Host)
		case cachekey.RequestURI:
			buf = appendRequestURI(buf, r)
		case cachekey.URI:
			buf = append(buf, r.URL.Path...)
		case cachekey.Args:
			buf = append(buf, r.URL.RawQuery...)
		case cachekey.IsArgs:
			if r.URL.RawQuery != "" {
				buf = append(buf, '?')
			}
		case cachekey.Header:
			for i, v := range r.Header[p.Text] {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, v...)
			}
		case cachekey.Cookie:
			if c, err := r.Cookie(p.Text); err == nil {
				buf = append(buf, c.Value...)
			}
		}
	}
	return buf
}

// appendHost appends the lower-cased host without its port, as nginx's
// $host.
func appendHost(buf []byte, host string) []byte {
	host = hostOnly(host)
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf
}

// hostOnly drops the port (and IPv6 brackets) from a Host value without
// allocating.
func hostOnly(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.IndexByte(host, ':'); i >= 0 && strings.LastIndexByte(host, ':') == i {
		return host[:i]
	}
	return host
}

// appendRequestURI appends the path and query in origin form.
func appendRequestURI(buf []byte, r *http.Request) []byte {
	p := r.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	buf = append(buf, p...)
	if r.URL.ForceQuery || r.URL.RawQuery != "" {
		buf = append(buf, '?')
		buf = append(buf, r.URL.RawQuery...)
	}
	return buf
}

// urlKey is the purge and invalidation index key of a request: host
// (lower case, no port) and request URI, whatever the key template.
func urlKey(host, requestURI string) string {
	b := appendHost(make([]byte, 0, len(host)+1+len(requestURI)), host)
	b = append(b, ' ')
	return string(append(b, requestURI...))
}
