package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tandem-server/tandem/upstream/uwsgi"

	"github.com/tandem-server/tandem/upstream/internal/headlimit"
)

// idleConnTimeout is how long an idle pooled connection is kept. nginx's
// upstream keepalive_timeout default; app servers with shorter timeouts
// close first, which the Transport handles by retrying on a fresh
// connection when nothing was written.
const idleConnTimeout = 60 * time.Second

// transport is how requests reach one server.
type transport struct {
	rt http.RoundTripper
	// scheme and host go into each outgoing request's URL. For unix
	// sockets the host is a placeholder: the dialer ignores it, and the
	// Host header comes from the client (or proxy_set_header Host).
	scheme, host string
	// traced is true when rt reports httptrace.GotConn, so "no connection
	// was obtained" can be told apart from failures after sending.
	// Transports without it are judged by their dial errors alone.
	traced bool
}

// newTransport builds the transport for one server. Every scheme is one
// case here; the uwsgi transport (upstream/uwsgi) slots in as the last.
func newTransport(ep endpoint, cfg *Config, tlsCfg *tls.Config) (transport, error) {
	switch ep.scheme {
	case "http", "unix":
		return transport{rt: newH1Transport(ep, cfg), scheme: "http", host: hostFor(ep)}, nil
	case "https":
		return transport{rt: newHTTPTransport(ep, cfg, tlsCfg), scheme: "https", host: ep.addr, traced: true}, nil
	case "uwsgi", "uwsgi+unix":
		// One connection per request: the uwsgi protocol has no keep-alive.
		rt := &uwsgi.Transport{Network: ep.network, Addr: ep.addr, DialTimeout: cfg.ConnectTimeout, FirstByteTimeout: cfg.FirstByteTimeout}
		return transport{rt: rt, scheme: "http", host: hostFor(ep)}, nil
	}
	return transport{}, fmt.Errorf("unsupported scheme %q", ep.scheme)
}

// hostFor is the URL host of a server's requests: its address, or
// "localhost" for a unix socket (used as Host only when the client sent
// none, as an HTTP/1.0 client may).
func hostFor(ep endpoint) string {
	if ep.network == "unix" {
		return "localhost"
	}
	return ep.addr
}

// newHTTPTransport is a Transport dedicated to one server, so its idle
// pool is that server's keep-alive pool and the dialer can ignore the
// address the Transport asks for (the unix socket path is fixed).
func newHTTPTransport(ep endpoint, cfg *Config, tlsCfg *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	network, addr := ep.network, ep.addr
	t := &http.Transport{
		// No Proxy: HTTP_PROXY in the environment must not reroute
		// backend traffic.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.FirstByteTimeout,
		IdleConnTimeout:       idleConnTimeout,
		// One host per Transport: both limits are the per-server pool.
		MaxIdleConns:        cfg.Keepalive,
		MaxIdleConnsPerHost: cfg.Keepalive,
		DisableKeepAlives:   cfg.Keepalive <= 0,
		// Pass the client's Accept-Encoding through; never decompress
		// behind the client's back.
		DisableCompression: true,
		// The same bound on a response head as the other transports
		// (net/http's default is 10 MB).
		MaxResponseHeaderBytes: headlimit.Max,
		// h2 only where TLS negotiates it; WebSocket requests are forced
		// to HTTP/1.1 by the Transport itself.
		ForceAttemptHTTP2: ep.scheme == "https",
	}
	return t
}

// newTLSConfig is shared by a group's https servers. ServerName is left
// empty: the Transport fills it from each server's host.
func newTLSConfig(cfg *Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !cfg.TLSVerify}
	if cfg.TLSCA == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(cfg.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("tls_ca: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls_ca %s: no PEM certificates found", cfg.TLSCA)
	}
	tc.RootCAs = roots
	return tc, nil
}

// closeIdle drops a transport's idle connections, if it pools any.
func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// isDialError reports whether err happened while connecting, so the
// request cannot have reached the server.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
