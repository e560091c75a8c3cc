//go:build linux

package sockdial

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
)

// resolveTTL is how long a host name's addresses are reused before they
// are looked up again. A failed connect forgets them at once, so a
// backend that moved is followed on the next request.
const resolveTTL = 5 * time.Second

// hostTargets dials a host name: it looks the name up at most once per
// resolveTTL and connects to its addresses in the resolver's order, the
// first that accepts winning, as net.Dialer does (without its
// per-connection look-up).
type hostTargets struct {
	network string
	host    string
	port    uint16
	lookup  func(ctx context.Context, network, host string) ([]netip.Addr, error)

	mu      sync.Mutex
	targets []*target
	expires time.Time
}

// newHostTargets is nil when addr is not HOST:PORT with a host name.
func newHostTargets(network, addr string) *hostTargets {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return nil
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil
	}
	return &hostTargets{network: network, host: host, port: uint16(p), lookup: net.DefaultResolver.LookupNetIP}
}

// cached returns the targets of the last look-up while they are fresh.
func (h *hostTargets) cached() []*target {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.targets != nil && time.Now().Before(h.expires) {
		return h.targets
	}
	return nil
}

// resolve looks the name up and caches its targets.
func (h *hostTargets) resolve(ctx context.Context) ([]*target, error) {
	ipNet := "ip"
	switch h.network {
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	}
	addrs, err := h.lookup(ctx, ipNet, h.host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errNoAddress(h.host)
	}
	targets := make([]*target, 0, len(addrs))
	for _, a := range addrs {
		targets = append(targets, tcpTarget(netip.AddrPortFrom(a.Unmap(), h.port)))
	}
	h.mu.Lock()
	h.targets, h.expires = targets, time.Now().Add(resolveTTL)
	h.mu.Unlock()
	return targets, nil
}

// forget drops the cached addresses after a failed connect.
func (h *hostTargets) forget() {
	h.mu.Lock()
	h.targets = nil
	h.mu.Unlock()
}

// dial connects to the first address that accepts, within one timeout
// for the look-up and all the connects.
func (h *hostTargets) dial(ctx context.Context, timeout time.Duration) (net.Conn, error) {
	start := time.Now()
	targets := h.cached()
	if targets == nil {
		lctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			lctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		var err error
		if targets, err = h.resolve(lctx); err != nil {
			return nil, &net.OpError{Op: "dial", Net: h.network, Err: err}
		}
	}
	var first error
	for _, t := range targets {
		var remaining time.Duration
		if timeout > 0 {
			if remaining = timeout - time.Since(start); remaining <= 0 {
				if first == nil {
					first = t.dialError(os.ErrDeadlineExceeded)
				}
				break
			}
		}
		c, err := t.dial(ctx, remaining)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	h.forget()
	return nil, first
}

// errNoAddress is a look-up that answered with no address.
func errNoAddress(host string) error {
	return &net.DNSError{Err: "no suitable address found", Name: host, IsNotFound: true}
}
