package uwsgi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

const (
	// MaxVarLen is the longest key or value a var can have: each is
	// prefixed by a 16-bit little-endian length.
	MaxVarLen = 0xFFFF
	// MaxVarsSize is the largest vars block a packet can carry: the
	// packet header's datasize is 16 bits wide.
	MaxVarsSize = 0xFFFF
)

// ErrVarsTooLarge is returned (wrapped) by AppendVars and RoundTrip when a
// var's key or value, or the whole vars block, does not fit the protocol's
// 16-bit sizes. The request head is too large: callers answer 431 when
// headers are to blame, 502 otherwise.
var ErrVarsTooLarge = errors.New("request head too large for the uwsgi protocol")

// errShortVars reports a vars block that ends inside a length or a field.
var errShortVars = errors.New("truncated vars block")

// AppendVars appends the vars block for r (without the 4-byte packet
// header) to dst, following the CGI conventions that nginx's uwsgi_params
// use and uWSGI expects.
//
// Only headers produce client-named vars, and only as HTTP_<NAME>: names
// containing '_' or invalid characters are skipped (nginx's
// underscores_in_headers off, so X_Foo cannot impersonate X-Foo), Proxy is
// dropped (httpoxy, CVE-2016-5385), and Content-Type, Content-Length and
// Host are sent once, as CONTENT_TYPE, CONTENT_LENGTH (from r.ContentLength,
// the framing actually used; Transfer-Encoding is dropped with it) and
// HTTP_HOST (from r.Host). No input can produce a UWSGI_* var, which uWSGI
// would obey as a configuration change.
//
// X-Forwarded-Proto and X-Forwarded-Ssl pass through as HTTP_* vars, and
// uWSGI derives wsgi.url_scheme from them, ahead of HTTPS: the caller must
// strip or overwrite them for untrusted clients.
//
// It returns an error wrapping ErrVarsTooLarge when the block would not fit
// the protocol, and an error for a request that cannot be encoded (no URL,
// an invalid method or header value). On error dst is returned unchanged.
func AppendVars(dst []byte, r *http.Request) ([]byte, error) {
	if r.URL == nil {
		return dst, errors.New("uwsgi: request has no URL")
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validToken(method) {
		return dst, fmt.Errorf("uwsgi: invalid method %.40q", method)
	}
	e := encoder{buf: dst, start: len(dst)}
	e.add("REQUEST_METHOD", method)
	e.add("REQUEST_URI", r.URL.RequestURI())
	e.add("PATH_INFO", pathInfo(r))
	e.add("QUERY_STRING", r.URL.RawQuery)
	e.add("SERVER_PROTOCOL", serverProtocol(r.Proto))
	// RFC 3875 §4.1.2: an absent CONTENT_LENGTH means no body.
	if r.ContentLength > 0 {
		e.add("CONTENT_LENGTH", strconv.FormatInt(r.ContentLength, 10))
	}
	e.addRemote(r.RemoteAddr)
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !validHost(host) {
		return dst, fmt.Errorf("uwsgi: invalid Host %.40q", host)
	}
	e.addServer(r, host)
	if r.TLS != nil {
		e.add("REQUEST_SCHEME", "https")
		e.add("HTTPS", "on")
	} else {
		e.add("REQUEST_SCHEME", "http")
	}
	if host != "" {
		e.add("HTTP_HOST", host)
	}
	if err := e.addHeaders(r.Header); err != nil {
		return dst, err
	}
	if e.err != nil {
		return dst, e.err
	}
	return e.buf, nil
}

// encoder appends vars to buf and records the first error; later adds are
// no-ops, so AppendVars reads as a list.
type encoder struct {
	buf   []byte
	start int // where the vars block begins in buf
	err   error
}

func (e *encoder) add(key, value string) {
	if e.err != nil {
		return
	}
	if len(key) > MaxVarLen || len(value) > MaxVarLen {
		e.err = fmt.Errorf("uwsgi: var %.40s is %d bytes long: %w", key, max(len(key), len(value)), ErrVarsTooLarge)
		return
	}
	if size := len(e.buf) - e.start + 4 + len(key) + len(value); size > MaxVarsSize {
		e.err = fmt.Errorf("uwsgi: vars block exceeds %d bytes at %.40s: %w", MaxVarsSize, key, ErrVarsTooLarge)
		return
	}
	e.buf = binary.LittleEndian.AppendUint16(e.buf, uint16(len(key)))
	e.buf = append(e.buf, key...)
	e.buf = binary.LittleEndian.AppendUint16(e.buf, uint16(len(value)))
	e.buf = append(e.buf, value...)
}

// addRemote sets REMOTE_ADDR and REMOTE_PORT from an "ip:port" RemoteAddr.
// Anything else (a unix socket peer has no port) is sent as REMOTE_ADDR alone.
func (e *encoder) addRemote(remote string) {
	if remote == "" {
		return
	}
	host, port, err := net.SplitHostPort(remote)
	if err != nil {
		e.add("REMOTE_ADDR", remote)
		return
	}
	e.add("REMOTE_ADDR", host)
	e.add("REMOTE_PORT", port)
}

// addServer sets SERVER_NAME from the Host header and SERVER_PORT from the
// listener that accepted the request, as nginx's $server_port does; the
// Host port and then the scheme's default port stand in when the listener
// is unknown or has no port. PEP 3333 requires both to be non-empty.
func (e *encoder) addServer(r *http.Request, host string) {
	name, port := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		name, port = h, p
	} else {
		name = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			port = strconv.Itoa(int(ap.Port()))
			if name == "" {
				name = ap.Addr().Unmap().WithZone("").String()
			}
		}
	}
	if name == "" {
		name = "localhost"
	}
	if port == "" {
		port = "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	e.add("SERVER_NAME", name)
	e.add("SERVER_PORT", port)
}

// headerVar is one HTTP_* var before encoding.
type headerVar struct {
	name   string // HTTP_X_FOO
	key    string // the Header map key it came from
	values []string
	cookie bool
}

// addHeaders adds CONTENT_TYPE and one HTTP_* var per header name, sorted
// so the block is deterministic. Names that differ only in case (possible
// in a hand-built Header map) merge into one var.
func (e *encoder) addHeaders(h http.Header) error {
	var contentType, contentTypeKey string
	hasContentType := false
	vars := make([]headerVar, 0, len(h))
	for key, values := range h {
		if len(values) == 0 || !validToken(key) || strings.IndexByte(key, '_') >= 0 {
			continue
		}
		for _, v := range values {
			if !validValue(v) {
				return fmt.Errorf("uwsgi: invalid value for header %.40q", key)
			}
		}
		switch canon := http.CanonicalHeaderKey(key); canon {
		case "Content-Type":
			// First value, as nginx's $content_type; sorted keys keep
			// the choice deterministic when the map holds variants.
			if !hasContentType || key < contentTypeKey {
				contentType, contentTypeKey, hasContentType = values[0], key, true
			}
		case "Content-Length", "Transfer-Encoding", "Host", "Proxy":
			// Framing and Host come from r's fields; Proxy is httpoxy.
		default:
			vars = append(vars, headerVar{name: "HTTP_" + varName(key), key: key, values: values, cookie: canon == "Cookie"})
		}
	}
	if hasContentType {
		e.add("CONTENT_TYPE", contentType)
	}
	slices.SortFunc(vars, func(a, b headerVar) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for i := 0; i < len(vars); {
		j, values := i+1, vars[i].values
		for ; j < len(vars) && vars[j].name == vars[i].name; j++ {
			values = append(slices.Clip(values), vars[j].values...)
		}
		sep := ", "
		if vars[i].cookie {
			sep = "; " // RFC 6265 §5.4: one Cookie header, pairs joined by "; "
		}
		e.add(vars[i].name, strings.Join(values, sep))
		i = j
	}
	return nil
}

// varName turns a header name into its CGI form: upper case, '-' → '_'.
// The caller has checked the name is a token without '_'.
func varName(key string) string {
	b := []byte(key)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case 'a' <= c && c <= 'z':
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// validToken reports whether s is an RFC 9110 §5.6.2 token (a header
// name or a method).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validValue reports whether s is a legal field value (RFC 9110 §5.5): no
// control bytes but tab, so a value can never smuggle a line break.
func validValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether s uses only the characters a Host may hold
// (RFC 3986 reg-name, IP literal and port), as net/http checks.
func validHost(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!$&'()*+,-.:;=[]_~%", c) >= 0) {
			return false
		}
	}
	return true
}

// pathInfo is the decoded path; "/" when the URL has none (an absolute
// URL like "http://host" means the root).
func pathInfo(r *http.Request) string {
	if r.URL.Path == "" {
		return "/"
	}
	return r.URL.Path
}

// serverProtocol passes the client's protocol through (uWSGI echoes it in
// its status line, and ReadResponse accepts any HTTP/x.y); a value that
// would not parse back falls back to HTTP/1.1.
func serverProtocol(proto string) string {
	if _, _, ok := http.ParseHTTPVersion(proto); ok {
		return proto
	}
	return "HTTP/1.1"
}

// ParseVars decodes a vars block strictly: it fails on a truncated length
// or field, an empty key, a repeated key, or a block larger than the
// protocol allows. It is the inverse of AppendVars, for tests, fuzzing and
// in-process uwsgi servers.
func ParseVars(b []byte) (map[string]string, error) {
	if len(b) > MaxVarsSize {
		return nil, fmt.Errorf("uwsgi: vars block is %d bytes: %w", len(b), ErrVarsTooLarge)
	}
	vars := make(map[string]string)
	for len(b) > 0 {
		k, rest, err := cutField(b)
		if err != nil {
			return nil, fmt.Errorf("uwsgi: key after %d vars: %w", len(vars), err)
		}
		v, rest, err := cutField(rest)
		if err != nil {
			return nil, fmt.Errorf("uwsgi: value of %.40q: %w", k, err)
		}
		if len(k) == 0 {
			return nil, fmt.Errorf("uwsgi: empty key after %d vars", len(vars))
		}
		if _, dup := vars[string(k)]; dup {
			return nil, fmt.Errorf("uwsgi: repeated var %.40q", k)
		}
		vars[string(k)] = string(v)
		b = rest
	}
	return vars, nil
}

// cutField splits one length-prefixed field off b.
func cutField(b []byte) (field, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, errShortVars
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, nil, errShortVars
	}
	return b[2 : 2+n], b[2+n:], nil
}
