package sockdial

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-server/tandem/upstream/internal/nettest"
)

// countingLookup answers every look-up with addrs, counting them.
func countingLookup(n *atomic.Int32, addrs ...string) func(context.Context, string, string) ([]netip.Addr, error) {
	return func(context.Context, string, string) ([]netip.Addr, error) {
		n.Add(1)
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// acceptingPort is a loopback server that closes every connection at
// once; it returns its address and port.
func acceptingPort(t *testing.T) (addr, port string) {
	t.Helper()
	addr = nettest.Serve(t, func(net.Conn) {})
	_, port, _ = net.SplitHostPort(addr)
	return addr, port
}

// A host name is looked up once per resolveTTL, not per connection, and
// its addresses are tried in order: one that refuses passes the connect
// to the next.
func TestDial_HostNameCachedAndTriedInOrder(t *testing.T) {
	addr, port := acceptingPort(t)
	d := New("tcp", net.JoinHostPort("backend.test", port), time.Second)
	if d.host == nil {
		t.Fatal("a host name should be dialed through hostTargets")
	}
	var lookups atomic.Int32
	// Nothing listens on 127.0.0.2 at that port: refused, then 127.0.0.1.
	d.host.lookup = countingLookup(&lookups, "127.0.0.2", "127.0.0.1")
	for i := range 5 {
		c, err := d.Dial(context.Background())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if got := c.RemoteAddr().String(); got != addr {
			t.Fatalf("dial %d reached %s, want %s", i, got, addr)
		}
		c.Close()
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d look-ups for 5 dials, want 1", n)
	}
}

// When every address fails, the addresses are forgotten: the next dial
// looks the name up again (the backend may have moved).
func TestDial_HostNameFailureForgetsAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	d := New("tcp", net.JoinHostPort("gone.test", port), time.Second)
	var lookups atomic.Int32
	d.host.lookup = countingLookup(&lookups, "127.0.0.1")
	for range 2 {
		_, err := d.Dial(context.Background())
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			t.Fatalf("%v, want a dial error", err)
		}
	}
	if n := lookups.Load(); n != 2 {
		t.Fatalf("%d look-ups after 2 failed dials, want 2", n)
	}
}

// A name that does not resolve is a dial error wrapping the DNS error,
// as from net.Dialer.
func TestDial_HostNameLookupError(t *testing.T) {
	d := New("tcp", "nowhere.invalid:80", time.Second)
	d.host.lookup = func(context.Context, string, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}
	}
	_, err := d.Dial(context.Background())
	var op *net.OpError
	var dns *net.DNSError
	if !errors.As(err, &op) || op.Op != "dial" || !errors.As(err, &dns) || !dns.IsNotFound {
		t.Fatalf("%v, want a dial error wrapping the DNS error", err)
	}
	if got := err.Error(); got != "dial tcp: lookup nowhere.invalid: no such host" {
		t.Fatalf("message %q", got)
	}
}

// localhost goes through the system resolver (/etc/hosts), for real.
func TestDial_Localhost(t *testing.T) {
	_, port := acceptingPort(t)
	c, err := New("tcp", net.JoinHostPort("localhost", port), time.Second).Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
