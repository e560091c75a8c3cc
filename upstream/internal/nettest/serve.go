// Package nettest holds loopback fixtures shared by the upstream
// packages' tests.
package nettest

import (
	"net"
	"testing"
)

// Serve listens on 127.0.0.1, hands every connection to fn on its own
// goroutine and closes it when fn returns, until the test ends. It
// returns the listener's HOST:PORT.
func Serve(tb testing.TB, fn func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fn(c)
			}()
		}
	}()
	return ln.Addr().String()
}
