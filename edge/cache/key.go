package cache

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// varKind names a key template variable.
type varKind uint8

const (
	varLiteral varKind = iota
	varScheme
	varHost
	varRequestURI
	varURI
	varArgs
	varIsArgs
	varHTTP   // $http_NAME: a request header
	varCookie // $cookie_NAME: a request cookie
)

// keyPart is literal text or one variable of a key template.
type keyPart struct {
	kind varKind
	text string // the literal, or the header/cookie name
}

// keyTemplate is a compiled Policy.Key.
type keyTemplate struct {
	parts []keyPart
}

// compileKey parses a template such as "$scheme://$host$request_uri".
// Variables are $name or ${name}; names are letters, digits and '_'.
func compileKey(tpl string) (*keyTemplate, error) {
	k := &keyTemplate{}
	for len(tpl) > 0 {
		i := strings.IndexByte(tpl, '$')
		if i < 0 {
			k.parts = append(k.parts, keyPart{text: tpl})
			break
		}
		if i > 0 {
			k.parts = append(k.parts, keyPart{text: tpl[:i]})
		}
		tpl = tpl[i+1:]
		var name string
		if strings.HasPrefix(tpl, "{") {
			end := strings.IndexByte(tpl, '}')
			if end < 0 {
				return nil, errors.New("unclosed ${")
			}
			name, tpl = tpl[1:end], tpl[end+1:]
		} else {
			n := 0
			for n < len(tpl) && isNameByte(tpl[n]) {
				n++
			}
			name, tpl = tpl[:n], tpl[n:]
		}
		p, err := keyVar(name)
		if err != nil {
			return nil, err
		}
		k.parts = append(k.parts, p)
	}
	if len(k.parts) == 0 {
		return nil, errors.New("empty key")
	}
	return k, nil
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func keyVar(name string) (keyPart, error) {
	switch name {
	case "scheme":
		return keyPart{kind: varScheme}, nil
	case "host":
		return keyPart{kind: varHost}, nil
	case "request_uri":
		return keyPart{kind: varRequestURI}, nil
	case "uri":
		return keyPart{kind: varURI}, nil
	case "args", "query_string":
		return keyPart{kind: varArgs}, nil
	case "is_args":
		return keyPart{kind: varIsArgs}, nil
	}
	if h, ok := strings.CutPrefix(name, "http_"); ok && h != "" {
		// nginx spelling: $http_x_api_version is X-Api-Version.
		return keyPart{kind: varHTTP, text: http.CanonicalHeaderKey(strings.ReplaceAll(h, "_", "-"))}, nil
	}
	if c, ok := strings.CutPrefix(name, "cookie_"); ok && c != "" {
		return keyPart{kind: varCookie, text: c}, nil
	}
	if name == "" {
		return keyPart{}, errors.New("'$' without a variable name")
	}
	return keyPart{}, fmt.Errorf("unknown variable $%s", name)
}

// append writes r's key into buf. It does not allocate for the default
// template.
func (k *keyTemplate) append(buf []byte, r *http.Request) []byte {
	for _, p := range k.parts {
		switch p.kind {
		case varLiteral:
			buf = append(buf, p.text...)
		case varScheme:
			if r.TLS != nil {
				buf = append(buf, "https"...)
			} else {
				buf = append(buf, "http"...)
			}
		case varHost:
			buf = appendHost(buf, r.Host)
		case varRequestURI:
			buf = appendRequestURI(buf, r)
		case varURI:
			buf = append(buf, r.URL.Path...)
		case varArgs:
			buf = append(buf, r.URL.RawQuery...)
		case varIsArgs:
			if r.URL.RawQuery != "" {
				buf = append(buf, '?')
			}
		case varHTTP:
			for i, v := range r.Header[p.text] {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, v...)
			}
		case varCookie:
			if c, err := r.Cookie(p.text); err == nil {
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
