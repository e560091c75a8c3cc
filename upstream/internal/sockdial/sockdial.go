// Package sockdial connects to one fixed upstream address, a unix socket
// or a host and port, with as little work per connection as the kernel
// allows.
//
// Against app servers that close every connection (gunicorn's sync
// workers) a proxy dials once per request, and net.Dialer made that dial
// a fifth of the proxy's CPU (bench/proxy.sh): a context with a deadline
// and its timer per dial, address resolution, getsockname and getpeername
// after every connect, and for TCP a goroutine per connect that watches
// the context. A Dialer resolves its address once, creates a non-blocking
// socket, connects, and hands the descriptor to the runtime poller
// through os.NewFile; a pending TCP connect waits in the poller under the
// connect deadline. A host name is looked up at most every resolveTTL
// (and again after its addresses all failed), then dialed the same way.
// Systems other than Linux go through net.Dialer.
//
// Errors look like net.Dialer's: a *net.OpError with Op "dial", its Err
// the system call error or an i/o timeout (Timeout() true).
package sockdial

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// Dialer connects to one address. It is safe for concurrent use.
type Dialer struct {
	network, addr string
	timeout       time.Duration
	raw           *target      // a unix socket or an IP literal
	host          *hostTargets // else a host name, on Linux
	fallback      net.Dialer   // else net.Dialer does the work
}

// New returns a Dialer for network ("tcp" or "unix") and addr, each
// connect bounded by timeout (0: only by the context). TCP connections
// get TCP_NODELAY, as net.Dialer gives them, and no keep-alive probes, as
// nginx leaves them off (proxy_socket_keepalive): net.Dialer's default
// costs four socket options per dial, and probes would not help a pool
// whose idle connections are dropped after a timeout and whose stale
// ones are noticed on reuse and the request sent again.
func New(network, addr string, timeout time.Duration) *Dialer {
	d := &Dialer{
		network:  network,
		addr:     addr,
		timeout:  timeout,
		fallback: net.Dialer{Timeout: timeout, KeepAlive: -1},
	}
	switch network {
	case "unix":
		d.raw = unixTarget(addr)
	case "tcp", "tcp4", "tcp6":
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			d.raw = tcpTarget(ap)
		} else {
			d.host = newHostTargets(network, addr)
		}
	}
	return d
}

// Dial connects, or returns a *net.OpError with Op "dial".
func (d *Dialer) Dial(ctx context.Context) (net.Conn, error) {
	switch {
	case d.raw != nil:
		return d.raw.dial(ctx, d.timeout)
	case d.host != nil:
		return d.host.dial(ctx, d.timeout)
	}
	return d.fallback.DialContext(ctx, d.network, d.addr)
}
