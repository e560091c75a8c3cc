package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/tandem-server/tandem/conf"
)

// HTTP/3 at the edge. A TLS socket address with at least one `http3 on`
// site (its own or one of the specific addresses it covers) also gets a
// UDP socket on the same host and port, served by quic-go's http3.Server
// with the same listenerHandler as the TCP socket, so routing, the handler
// chain and the access log (protocol "HTTP/3.0") are shared. TLS
// decisions and certificates come from the router current at each
// handshake, as on TCP (modeListener), with ALPN "h3" instead of h2.
//
// UDP sockets follow the TCP listeners' lifecycle: opened by Start and by
// a Reload that wants them (before the router swap; a bind error keeps the
// old config), kept across reloads that still want them, and drained then
// closed when a reload drops them and on Shutdown. Draining closes the
// QUIC listener at once (new handshakes are refused), sends GOAWAY, and
// frees the UDP port only when the open connections end or the shutdown
// timeout passes, so a reload that turns http3 back on within that window
// may fail to bind; the old config then keeps serving.
//
// TLS responses of http3 sites carry Alt-Svc: h3=":PORT"; ma=86400, PORT
// being the UDP socket's real port. The UDP socket is bound to the TCP
// socket's port; only when the config says port 0 and that UDP port is
// taken does it get a port of its own, which Alt-Svc then names.
//
// Not applied to QUIC: max_connections, body_timeout and write_timeout
// (QUIC has its own flow control and a 30s idle timeout); 0-RTT is off,
// since early data can be replayed.

// altSvcMaxAge is how long clients may remember the Alt-Svc
// advertisement (RFC 7838 §3.1), one day as in most servers.
const altSvcMaxAge = 86400

// quicBufferSize is the UDP socket buffer size quic-go asks the kernel
// for; with less, fast transfers drop packets.
const quicBufferSize = 7 << 20

// quicListener is one UDP socket serving HTTP/3 for a socket address.
type quicListener struct {
	addr string // the configured address, as in Server.listeners
	conn *net.UDPConn
	tr   *quic.Transport
	ln   *quic.EarlyListener
	srv  *http3.Server
	done chan struct{} // closed when ServeListener returns
}

// wantsQUIC reports whether the socket bound for addr serves HTTP/3: one
// of the TLS host tables it serves has an http3 site.
func (rt *router) wantsQUIC(addr string) bool {
	if !rt.sockets[addr] {
		return false
	}
	if rt.byAddr[addr].hasHTTP3() {
		return true
	}
	for _, t := range rt.covered[addr] {
		if t.hasHTTP3() {
			return true
		}
	}
	return false
}

func (t *hostTable) hasHTTP3() bool {
	if t == nil || t.tls == nil {
		return false
	}
	for _, s := range t.allSites() {
		if s != nil && s.http3 {
			return true
		}
	}
	return false
}

// openQUICLocked binds a UDP socket for every address of rt that wants
// one and has none yet; tcp are the TCP listeners just opened (the others
// are in s.listeners), whose ports the UDP sockets reuse. On error it
// closes what it opened and returns nothing.
func (s *Server) openQUICLocked(rt *router, tcp []*listener, lim conf.Limits) ([]*quicListener, error) {
	var opened []*quicListener
	for addr := range rt.sockets {
		if !rt.wantsQUIC(addr) || s.quic[addr] != nil {
			continue
		}
		var tcpAddr net.Addr
		if l := s.listeners[addr]; l != nil {
			tcpAddr = l.ln.Addr()
		}
		for _, l := range tcp {
			if l.addr == addr {
				tcpAddr = l.ln.Addr()
			}
		}
		q, err := s.newQUICListener(addr, tcpAddr, lim)
		if err != nil {
			for _, q := range opened {
				q.closeNow()
			}
			return nil, err
		}
		opened = append(opened, q)
	}
	return opened, nil
}

// newQUICListener binds addr over UDP and sets up QUIC on it, without
// serving yet.
func (s *Server) newQUICListener(addr string, tcpAddr net.Addr, lim conf.Limits) (*quicListener, error) {
	conn, err := listenUDP(addr, tcpAddr)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: conn}
	base := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			var local net.Addr
			if hello.Conn != nil {
				local = hello.Conn.LocalAddr()
			}
			t := s.router.Load().tableFor(addr, local)
			if t == nil || t.tls == nil {
				return nil, errNotTLS
			}
			return t.tls, nil // ConfigureTLSConfig clones it with ALPN h3
		},
	}
	ln, err := tr.ListenEarly(http3.ConfigureTLSConfig(base), &quic.Config{
		MaxIncomingStreams: h2MaxConcurrentStreams,
	})
	if err != nil {
		_ = tr.Close()
		_ = conn.Close()
		return nil, fmt.Errorf("listen udp %s: %w", addr, err)
	}
	s.checkUDPBuffers(conn)
	return &quicListener{
		addr: addr, conn: conn, tr: tr, ln: ln, done: make(chan struct{}),
		srv: &http3.Server{
			Handler:        &listenerHandler{srv: s, addr: addr},
			MaxHeaderBytes: int(lim.MaxHeaderBytes),
			IdleTimeout:    lim.IdleTimeout,
			Logger:         slog.New(zapslog.NewHandler(s.log.Named("http3").Core())),
		},
	}, nil
}

// listenUDP binds addr over UDP. For port 0 it first tries the port the
// TCP socket got, so that both protocols share one port as usual.
func listenUDP(addr string, tcpAddr net.Addr) (*net.UDPConn, error) {
	try := addr
	if host, port, err := net.SplitHostPort(addr); err == nil && port == "0" && tcpAddr != nil {
		if _, p, err := net.SplitHostPort(tcpAddr.String()); err == nil {
			try = net.JoinHostPort(host, p)
		}
	}
	pc, err := net.ListenPacket("udp", try)
	if err != nil && try != addr {
		pc, err = net.ListenPacket("udp", addr)
	}
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err // "bind: address already in use", without a second address
		}
		return nil, fmt.Errorf("listen udp %s: %w", addr, err)
	}
	return pc.(*net.UDPConn), nil
}

// serveQUICLocked starts serving opened sockets and advertises them.
func (s *Server) serveQUICLocked(opened []*quicListener) {
	if s.quic == nil {
		s.quic = make(map[string]*quicListener)
	}
	for _, q := range opened {
		s.quic[q.addr] = q
		_, port, _ := net.SplitHostPort(q.conn.LocalAddr().String())
		s.altSvc.Store(q.addr, `h3=":`+port+`"; ma=`+strconv.Itoa(altSvcMaxAge))
		s.log.Info("listening for HTTP/3", zap.String("addr", q.conn.LocalAddr().String()))
		go func() {
			defer close(q.done)
			err := q.srv.ServeListener(q.ln)
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
				s.log.Error("HTTP/3 serve stopped", zap.String("addr", q.addr), zap.Error(err))
			}
		}()
	}
}

// dropQUICLocked drains, in the background within timeout, the UDP
// sockets rt no longer wants. Call it after rt is swapped in.
func (s *Server) dropQUICLocked(rt *router, timeout time.Duration) {
	for addr, q := range s.quic {
		if rt.wantsQUIC(addr) {
			continue
		}
		delete(s.quic, addr)
		s.altSvc.Delete(addr)
		s.log.Info("closing HTTP/3 listener no longer in config", zap.String("addr", addr))
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_ = q.shutdown(ctx)
		}()
	}
}

// takeQUICLocked removes every UDP socket from s, for Shutdown.
func (s *Server) takeQUICLocked() []*quicListener {
	var qs []*quicListener
	for addr, q := range s.quic {
		qs = append(qs, q)
		s.altSvc.Delete(addr)
	}
	s.quic = nil
	return qs
}

// shutdown stops new QUIC connections at once, sends GOAWAY and waits for
// running requests until ctx is done, then closes the connections left
// and the UDP socket. It returns ctx.Err() when the deadline cut requests
// off.
func (q *quicListener) shutdown(ctx context.Context) error {
	_ = q.ln.Close() // handshakes in flight are refused; accepted connections go on
	err := q.srv.Shutdown(ctx)
	if err != nil {
		_ = q.srv.Close()
	}
	q.closeNow()
	<-q.done
	return err
}

// closeNow closes the socket and every connection on it.
func (q *quicListener) closeNow() {
	_ = q.ln.Close()
	_ = q.tr.Close()
	_ = q.conn.Close()
}

// advertiseHTTP3 sets Alt-Svc on a TLS response of an http3 site.
func (s *Server) advertiseHTTP3(w http.ResponseWriter, r *http.Request, st *site, addr string) {
	if !st.http3 || r.TLS == nil || r.ProtoMajor >= 3 {
		return
	}
	if v, ok := s.altSvc.Load(addr); ok {
		w.Header().Set("Alt-Svc", v.(string))
	}
}

// checkUDPBuffers warns in the error log when the kernel gave the UDP
// socket smaller buffers than quic-go asked for (it has tried by then),
// which caps HTTP/3 throughput; net.core.rmem_max and wmem_max raise the
// limit.
func (s *Server) checkUDPBuffers(c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	var rcv, snd int
	_ = rc.Control(func(fd uintptr) {
		rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		snd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	if rcv >= quicBufferSize && snd >= quicBufferSize {
		return
	}
	s.udpWarned.Do(func() {
		s.log.Warn("UDP socket buffers are below what QUIC wants; HTTP/3 transfers may be slower",
			zap.Int("receive_kib", rcv/1024), zap.Int("send_kib", snd/1024), zap.Int("want_kib", quicBufferSize/1024),
			zap.String("fix", "sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 (see https://github.com/quic-go/quic-go/wiki/UDP-Buffer-Sizes)"))
	})
}
