//go:build !linux

package sockdial

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// target is unused off Linux: every dial goes through net.Dialer.
type target struct{}

func unixTarget(string) *target        { return nil }
func tcpTarget(netip.AddrPort) *target { return nil }

func (*target) dial(context.Context, time.Duration) (net.Conn, error) {
	return nil, net.UnknownNetworkError("sockdial")
}

// hostTargets is unused off Linux too.
type hostTargets struct{}

func newHostTargets(string, string) *hostTargets { return nil }

func (*hostTargets) dial(context.Context, time.Duration) (net.Conn, error) {
	return nil, net.UnknownNetworkError("sockdial")
}
