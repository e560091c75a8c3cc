package appserver

import (
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/tandem-server/tandem/appserver/wire"
)

// appendEnviron writes the WSGI/CGI environ of r into the open H frame, per
// docs/protocol.md. bodyLen < 0 means no CONTENT_LENGTH.
func appendEnviron(wr *wire.Writer, r *http.Request, bodyLen int64) error {
	wr.AppendVar("REQUEST_METHOD", r.Method)
	wr.AppendVar("SCRIPT_NAME", "")
	wr.AppendVar("PATH_INFO", r.URL.Path)
	wr.AppendVar("QUERY_STRING", r.URL.RawQuery)
	name, port := serverNamePort(r)
	wr.AppendVar("SERVER_NAME", name)
	wr.AppendVar("SERVER_PORT", port)
	wr.AppendVar("SERVER_PROTOCOL", r.Proto)
	raddr, rport, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		raddr, rport = r.RemoteAddr, ""
	}
	wr.AppendVar("REMOTE_ADDR", raddr)
	wr.AppendVar("REMOTE_PORT", rport)
	if ct := r.Header["Content-Type"]; len(ct) > 0 {
		wr.AppendVar("CONTENT_TYPE", ct[0])
	}
	if bodyLen >= 0 {
		var num [20]byte
		wr.AppendVar("CONTENT_LENGTH", string(strconv.AppendInt(num[:0], bodyLen, 10)))
	}
	if r.Host != "" {
		wr.AppendVar("HTTP_HOST", r.Host)
	}
	conn := r.Header["Connection"]
	for k, vs := range r.Header {
		if skipRequestHeader(k, conn) {
			continue
		}
		sep := ", "
		if k == "Cookie" {
			sep = "; " // RFC 6265 §5.4; HTTP/2 splits cookies into several fields
		}
		wr.AppendHeaderVar(k, vs, sep)
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	wr.AppendVar("REQUEST_URI", uri)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return wr.AppendVar("wsgi.url_scheme", scheme)
}

// skipRequestHeader drops headers that must not reach the app as HTTP_*:
// those with their own environ key, hop-by-hop ones, and any name with an
// underscore. "X-Auth_User" and "X-Auth-User" would both become
// HTTP_X_AUTH_USER, so a client could spoof a header a front proxy sets;
// gunicorn and nginx drop such names for the same reason.
func skipRequestHeader(k string, connection []string) bool {
	switch k {
	case "Content-Type", "Content-Length", "Host":
		return true
	}
	return strings.IndexByte(k, '_') >= 0 || isHopByHop(k, connection)
}

// hopByHop are the connection-specific fields of RFC 9110 §7.6.1 plus the
// legacy ones net/http/httputil also strips. They describe one hop (client
// ↔ tandem or tandem ↔ worker) and are never forwarded, in either
// direction.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// isHopByHop reports whether canonical header name k is hop-by-hop, either
// by the fixed list or because a Connection field names it.
func isHopByHop(k string, connection []string) bool {
	if hopByHop[k] {
		return true
	}
	for _, v := range connection {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), k) {
				return true
			}
		}
	}
	return false
}

// serverNamePort is SERVER_NAME and SERVER_PORT: the Host header when
// there is one, else the local address the request arrived on.
func serverNamePort(r *http.Request) (string, string) {
	host, port := r.Host, ""
	if strings.IndexByte(host, ':') >= 0 { // SplitHostPort allocates its error
		if h, p, err := net.SplitHostPort(host); err == nil {
			host, port = h, p
		}
	}
	if host == "" || port == "" {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if h, p, err := net.SplitHostPort(la.String()); err == nil {
				if host == "" {
					host = h
				}
				if port == "" && r.Host == "" {
					port = p
				}
			}
		}
	}
	if port == "" {
		port = "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	return strings.Trim(host, "[]"), port
}
