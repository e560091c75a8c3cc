// Package cachekey parses response-cache key templates such as
// "$scheme://$host$request_uri". The config checks `cache_key` with it
// and the response cache (edge/cache) renders the parsed parts per
// request, so both agree on the syntax without conf importing the edge.
package cachekey

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Default is the key when a location sets none: one entry per scheme,
// host and request URI, as nginx's proxy_cache_key default.
const Default = "$scheme://$host$request_uri"

// Kind says what a Part stands for.
type Kind uint8

// The variables a template may use.
const (
	Literal    Kind = iota // Text itself
	Scheme                 // $scheme: http or https
	Host                   // $host: lower case, without the port
	RequestURI             // $request_uri: path and query as sent
	URI                    // $uri: the decoded path
	Args                   // $args, $query_string: the query
	IsArgs                 // $is_args: "?" when there is a query
	Header                 // $http_NAME: request header Text
	Cookie                 // $cookie_NAME: request cookie Text
)

// Part is literal text or one variable of a template.
type Part struct {
	Kind Kind
	// Text is the literal, the canonical header name (Header) or the
	// cookie name (Cookie).
	Text string
}

// Parse splits a template into parts. Variables are $name or ${name};
// names are letters, digits and '_'.
func Parse(tpl string) ([]Part, error) {
	var parts []Part
	for len(tpl) > 0 {
		i := strings.IndexByte(tpl, '$')
		if i < 0 {
			parts = append(parts, Part{Text: tpl})
			break
		}
		if i > 0 {
			parts = append(parts, Part{Text: tpl[:i]})
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
		p, err := variable(name)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return nil, errors.New("empty key")
	}
	return parts, nil
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func variable(name string) (Part, error) {
	switch name {
	case "scheme":
		return Part{Kind: Scheme}, nil
	case "host":
		return Part{Kind: Host}, nil
	case "request_uri":
		return Part{Kind: RequestURI}, nil
	case "uri":
		return Part{Kind: URI}, nil
	case "args", "query_string":
		return Part{Kind: Args}, nil
	case "is_args":
		return Part{Kind: IsArgs}, nil
	}
	if h, ok := strings.CutPrefix(name, "http_"); ok && h != "" {
		// nginx spelling: $http_x_api_version is X-Api-Version.
		return Part{Kind: Header, Text: http.CanonicalHeaderKey(strings.ReplaceAll(h, "_", "-"))}, nil
	}
	if c, ok := strings.CutPrefix(name, "cookie_"); ok && c != "" {
		return Part{Kind: Cookie, Text: c}, nil
	}
	if name == "" {
		return Part{}, errors.New("'$' without a variable name")
	}
	return Part{}, fmt.Errorf("unknown variable $%s", name)
}
