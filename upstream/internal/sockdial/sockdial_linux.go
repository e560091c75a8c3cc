package sockdial

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// target is a resolved address with what a connection reports about it.
type target struct {
	family int
	sa     syscall.Sockaddr
	net    string
	raddr  net.Addr
	laddr  net.Addr // for unix sockets; TCP's local port is the kernel's choice
	name   string   // the os.File's name
}

func unixTarget(path string) *target {
	return &target{
		family: syscall.AF_UNIX,
		sa:     &syscall.SockaddrUnix{Name: path},
		net:    "unix",
		raddr:  &net.UnixAddr{Name: path, Net: "unix"},
		laddr:  &net.UnixAddr{Net: "unix"},
		name:   "unix:" + path,
	}
}

func tcpTarget(ap netip.AddrPort) *target {
	t := &target{net: "tcp", raddr: net.TCPAddrFromAddrPort(ap), name: "tcp:" + ap.String()}
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		t.family = syscall.AF_INET
		t.sa = &syscall.SockaddrInet4{Addr: a.Unmap().As4(), Port: int(ap.Port())}
	} else {
		t.family = syscall.AF_INET6
		t.sa = &syscall.SockaddrInet6{Addr: a.As16(), Port: int(ap.Port()), ZoneId: zoneID(a.Zone())}
	}
	return t
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifc, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifc.Index)
	}
	return 0
}

// aLongTimeAgo is a deadline in the past: it wakes a pending wait now.
var aLongTimeAgo = time.Unix(1, 0)

func (t *target) dial(ctx context.Context, timeout time.Duration) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, t.dialError(err)
	}
	fd, err := syscall.Socket(t.family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, t.dialError(os.NewSyscallError("socket", err))
	}
	if t.family != syscall.AF_UNIX {
		// Request heads and bodies are written whole; Nagle would only
		// hold back the last piece of a streamed body.
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
			syscall.Close(fd)
			return nil, t.dialError(os.NewSyscallError("setsockopt", err))
		}
	}
	pending := false
	switch err := connect(fd, t.sockaddr()); err {
	case nil, syscall.EISCONN:
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		// On loopback the handshake is usually over by now: if the
		// socket has a peer, the wait below (deadline timers, a context
		// hook, a look at SO_ERROR) is not needed. ENOTCONN, still
		// pending or failed: the wait tells which.
		_, err := syscall.Getpeername(fd)
		pending = err != nil
	default:
		// A unix socket whose backlog is full says EAGAIN, which net
		// also reports as an error rather than waiting.
		syscall.Close(fd)
		return nil, t.dialError(os.NewSyscallError("connect", err))
	}
	f := os.NewFile(uintptr(fd), t.name) // non-blocking: joins the poller
	if pending {
		if err := t.await(ctx, f, timeout); err != nil {
			f.Close()
			return nil, t.dialError(err)
		}
	} else if err := ctx.Err(); err != nil {
		// Cancelled while connecting: the caller has given up, so it
		// gets no connection to send on, as from net.Dialer.
		f.Close()
		return nil, t.dialError(err)
	}
	return &conn{f: f, t: t}, nil
}

// sockaddr is a copy of t.sa for one connect: a Sockaddr keeps its
// encoded form inside itself, so one value may not be shared by
// concurrent connects.
func (t *target) sockaddr() syscall.Sockaddr {
	switch sa := t.sa.(type) {
	case *syscall.SockaddrInet4:
		c := *sa
		return &c
	case *syscall.SockaddrInet6:
		c := *sa
		return &c
	case *syscall.SockaddrUnix:
		c := *sa
		return &c
	}
	return t.sa
}

func connect(fd int, sa syscall.Sockaddr) error {
	err := syscall.Connect(fd, sa)
	if err == syscall.EINTR {
		// An interrupted connect goes on in the background, as
		// EINPROGRESS; the poller reports when it ends.
		return syscall.EINPROGRESS
	}
	return err
}

// await waits in the poller for a pending connect to finish, within
// timeout and while ctx lives.
func (t *target) await(ctx context.Context, f *os.File, timeout time.Duration) error {
	if timeout > 0 {
		f.SetWriteDeadline(time.Now().Add(timeout))
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { f.SetWriteDeadline(aLongTimeAgo) })
	}
	rc, err := f.SyscallConn()
	if err != nil {
		stop()
		return err
	}
	var connErr error
	werr := rc.Write(func(fd uintptr) bool {
		// Called once before any wait: RawWrite forgets a readiness the
		// poller saw before it started, so the state is asked for
		// rather than assumed. A failed connect leaves its error in
		// SO_ERROR; otherwise getpeername tells connected from pending
		// (the poller may also wake spuriously), as net does.
		n, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		switch {
		case err != nil:
			connErr = os.NewSyscallError("getsockopt", err)
			return true
		case n != 0 && n != int(syscall.EINPROGRESS) && n != int(syscall.EALREADY) && n != int(syscall.EINTR):
			connErr = os.NewSyscallError("connect", syscall.Errno(n))
			return true
		}
		_, err = syscall.Getpeername(int(fd))
		return err == nil
	})
	if !stop() {
		// ctx ended: its deadline is in place, whatever the wait saw.
		return ctx.Err()
	}
	switch {
	case werr != nil && ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(werr, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded // "i/o timeout", Timeout() true
	case werr != nil:
		return werr
	case connErr != nil:
		return connErr
	}
	f.SetWriteDeadline(time.Time{})
	return nil
}

func (t *target) dialError(err error) error {
	return &net.OpError{Op: "dial", Net: t.net, Addr: t.raddr, Err: err}
}

// conn is a connected socket as a net.Conn. Errors are shaped as net's
// (a *net.OpError; net.ErrClosed after Close) so callers that tell a
// reset from a timeout or a closed connection keep working.
type conn struct {
	f *os.File
	t *target
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	if err != nil {
		err = c.opError("read", err)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

func (c *conn) Close() error {
	if err := c.f.Close(); err != nil {
		return c.opError("close", err)
	}
	return nil
}

func (c *conn) LocalAddr() net.Addr {
	if c.t.laddr != nil {
		return c.t.laddr
	}
	// Asked for only in logs and tests; computed on demand so a dial
	// never pays getsockname.
	if sa, err := c.sockname(); err == nil {
		return sa
	}
	return &net.TCPAddr{}
}

func (c *conn) sockname() (net.Addr, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var sa syscall.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = syscall.Getsockname(int(fd)) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}, nil
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}, nil
	}
	return &net.TCPAddr{}, nil
}

func (c *conn) RemoteAddr() net.Addr                  { return c.t.raddr }
func (c *conn) SetDeadline(t time.Time) error         { return c.f.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error     { return c.f.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error    { return c.f.SetWriteDeadline(t) }
func (c *conn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// opError turns an *os.PathError into the *net.OpError net would return.
// EOF stays io.EOF.
func (c *conn) opError(op string, err error) error {
	if err == io.EOF {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, os.ErrClosed) {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: c.t.net, Source: c.t.laddr, Addr: c.t.raddr, Err: err}
}
