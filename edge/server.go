package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge/cache"
	"github.com/tandem-server/tandem/edge/packethint"
	"github.com/tandem-server/tandem/static"
)

// Server is the edge tier: it owns the listeners and serves every site of
// the current config. Configs are swapped whole by Reload.
type Server struct {
	log   *zap.Logger
	logs  *LogFiles
	files *static.Cache
	apps  func(name string) (AppHandler, bool)
	// groups keeps upstream groups (and their health state) running
	// across reloads that leave them unchanged.
	groups *groupRegistry
	// cache is the process's response cache; ownCache when New made it
	// (and Shutdown closes it).
	cache    *cache.Cache
	ownCache bool
	// acme obtains and renews ACME certificates across reloads.
	acme *acmeManager

	router atomic.Pointer[router]
	// bound maps each listening configured address to the address its
	// socket got (the real port for port 0), for HTTPS redirects.
	bound sync.Map

	mu        sync.Mutex
	listeners map[string]*listener // by address; guarded by mu
	limits    conf.Limits          // limits the current listeners were built with; guarded by mu
	closed    bool                 // guarded by mu
	// quic holds the UDP sockets serving HTTP/3 by address (http3.go);
	// guarded by mu. altSvc maps each to its Alt-Svc value.
	quic   map[string]*quicListener
	altSvc sync.Map
	// udpWarned keeps the small-UDP-buffer warning (checkUDPBuffers) to
	// one per server, like quic-go's own.
	udpWarned sync.Once
}

// listener is one bound address with its own http.Server.
type listener struct {
	addr string
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve returns
	h2c  bool          // srv accepts cleartext HTTP/2 (h2c.go)
}

// Options are the long-lived dependencies of a Server.
type Options struct {
	Log  *zap.Logger
	Logs *LogFiles
	// FileCache is shared by every static handler across reloads.
	FileCache *static.Cache
	// Cache is the response cache every caching location uses, kept
	// across reloads (see NewCache). Nil: New builds one from the
	// config's cache block and Shutdown closes it.
	Cache *cache.Cache
	// Apps finds the app pool for `app NAME;` (appserver.Manager in
	// production). Nil means no app pools: such locations fail to build.
	Apps func(name string) (AppHandler, bool)
}

// AppHandler serves a request with an application pool. Serve returns 0
// when it wrote the response, or a status it did not write so that
// error_page can answer instead.
type AppHandler interface {
	Serve(w http.ResponseWriter, r *http.Request) int
}

// New builds a server for cfg without opening any socket.
func New(cfg *conf.Config, opts Options) (*Server, error) {
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		log:       log,
		logs:      opts.Logs,
		files:     opts.FileCache,
		cache:     opts.Cache,
		apps:      opts.Apps,
		groups:    newGroupRegistry(),
		acme:      newACMEManager(log, cfg.TLSRenewCheck),
		listeners: make(map[string]*listener),
		limits:    cfg.Limits,
	}
	if s.logs == nil {
		s.logs = NewLogFiles()
	}
	if s.files == nil {
		s.files = static.NewCache(static.CacheConfig{})
	}
	if s.cache == nil {
		c, err := NewCache(cfg.Cache, s.log)
		if err != nil {
			return nil, err
		}
		s.cache, s.ownCache = c, true
	}
	rt, err := buildRouter(cfg, s.deps())
	if err != nil {
		if s.ownCache {
			_ = s.cache.Close()
		}
		s.acme.close()
		return nil, err
	}
	s.router.Store(rt)
	return s, nil
}

// Start opens every listen address of the current config and serves it.
// If any address cannot be bound, the ones opened are closed again and the
// error names the address.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	opened, err := s.openLocked(s.router.Load(), s.limits)
	if err != nil {
		return err
	}
	quics, err := s.openQUICLocked(s.router.Load(), opened, s.limits)
	if err != nil {
		for _, l := range opened {
			_ = l.ln.Close()
		}
		return err
	}
	for _, l := range opened {
		s.serveLocked(l)
	}
	s.serveQUICLocked(quics)
	s.acme.manage(s.router.Load().acmeCerts)
	return nil
}

// Addrs returns the bound addresses, sorted (the real port when the config
// asked for port 0).
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.listeners {
		out = append(out, l.ln.Addr().String())
	}
	sort.Strings(out)
	return out
}

// listenHint says how to get past the two bind errors operators meet
// first; "" for others.
func listenHint(addr string, err error) string {
	switch {
	case errors.Is(err, syscall.EACCES):
		if _, port, perr := net.SplitHostPort(addr); perr == nil {
			if n, aerr := strconv.Atoi(port); aerr == nil && n < 1024 {
				return " (ports below 1024 need root or the CAP_NET_BIND_SERVICE capability: " +
					"`setcap cap_net_bind_service=+ep` on the tandem binary, or AmbientCapabilities=CAP_NET_BIND_SERVICE in its systemd unit)"
			}
		}
	case errors.Is(err, syscall.EADDRINUSE):
		return " (another process listens there: `ss -ltnp` shows which)"
	}
	return ""
}

// openLocked binds every address of rt that is not already open. On error
// it closes what it opened and returns nothing.
func (s *Server) openLocked(rt *router, lim conf.Limits) ([]*listener, error) {
	var opened []*listener
	for addr := range rt.sockets {
		if _, ok := s.listeners[addr]; ok {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range opened {
				_ = l.ln.Close()
			}
			return nil, fmt.Errorf("listen %s: %w%s", addr, err, listenHint(addr, err))
		}
		el := &edgeListener{Listener: ln}
		if lim.WriteTimeout == 0 {
			el.sendTimeout = sendIdleTimeout
		}
		ln = el
		if lim.MaxConnections > 0 {
			ln = netutil.LimitListener(ln, lim.MaxConnections)
		}
		ln = newModeListener(ln, s, addr) // TLS or plain per connection (tls.go)
		l := &listener{addr: addr, ln: ln, srv: s.httpServer(addr, lim), done: make(chan struct{}), h2c: rt.wantsH2C(addr)}
		if l.h2c {
			enableH2C(l.srv)
		}
		opened = append(opened, l)
	}
	return opened, nil
}

func (s *Server) serveLocked(l *listener) {
	s.listeners[l.addr] = l
	s.bound.Store(l.addr, l.ln.Addr().String())
	s.log.Info("listening", zap.String("addr", l.ln.Addr().String()))
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve stopped", zap.String("addr", l.addr), zap.Error(err))
		}
	}()
}

func (s *Server) httpServer(addr string, lim conf.Limits) *http.Server {
	return &http.Server{
		Handler:           &listenerHandler{srv: s, addr: addr, bodyTimeout: lim.BodyTimeout},
		ReadHeaderTimeout: lim.HeaderTimeout,
		// No ReadTimeout: net/http's bounds headers and body together,
		// while body_timeout bounds each pause in a body (idleBody).
		WriteTimeout:   lim.WriteTimeout,
		IdleTimeout:    lim.IdleTimeout,
		MaxHeaderBytes: int(lim.MaxHeaderBytes),
		ErrorLog:       zap.NewStdLog(s.log.Named("http")),
		// HTTP/2 is negotiated by ALPN on TLS connections only.
		HTTP2:       &http.HTTP2Config{MaxConcurrentStreams: h2MaxConcurrentStreams},
		ConnContext: connContext,
	}
}

// connContext lets handlers reach a plain TCP connection's packet hints
// (packethint); TLS connections do not offer them.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if ec, ok := c.(*edgeConn); ok {
		return packethint.WithHinter(ctx, ec)
	}
	return ctx
}

// boundAddr returns the address the socket for the configured addr got,
// or "" when none is open.
func (s *Server) boundAddr(addr string) string {
	if v, ok := s.bound.Load(addr); ok {
		return v.(string)
	}
	return ""
}

// Reload swaps in cfg with no failed request: the new router is built
// first (an error leaves the old config serving), new addresses are bound
// before the swap (a bind error also leaves the old config serving), the
// router pointer is swapped, and only then are addresses that left the
// config shut down gracefully in the background, within the new config's
// shutdown_timeout. Unchanged addresses keep
// their sockets, so no connection is refused during the switch.
// Certificates and each address's TLS settings belong to the router and
// swap with it; whether a new connection is TLS is decided at accept from
// the router then current, so a kept socket may change between plain
// HTTP and TLS (open connections finish as they started).
//
// Listener-wide limits (timeouts, max_header_size, max_connections) and
// the h2c flag apply to newly opened addresses; the error log warns when a
// reload changes them. HTTP/3's UDP sockets are opened, kept and closed
// by the same rules (http3.go).
func (s *Server) Reload(cfg *conf.Config) error {
	rt, err := buildRouter(cfg, s.deps())
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("reload: server is shut down")
	}
	opened, err := s.openLocked(rt, cfg.Limits)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	quics, err := s.openQUICLocked(rt, opened, cfg.Limits)
	if err != nil {
		for _, l := range opened {
			_ = l.ln.Close()
		}
		return fmt.Errorf("reload: %w", err)
	}
	s.warnH2CLocked(rt)
	if cfg.Limits != s.limits && len(s.listeners) > 0 {
		s.log.Warn("listener limits changed; they apply to new listen addresses now and to all after a restart")
	}
	prev := s.router.Swap(rt)
	s.acme.manage(rt.acmeCerts)
	// Requests that picked the old router may still be running; its
	// handlers are released once they have had the grace period to finish.
	time.AfterFunc(cfg.ShutdownTimeout, prev.close)
	for _, l := range opened {
		s.serveLocked(l)
	}
	s.serveQUICLocked(quics)
	s.dropQUICLocked(rt, cfg.ShutdownTimeout)
	for addr, l := range s.listeners {
		if rt.sockets[addr] {
			continue
		}
		delete(s.listeners, addr)
		s.bound.Delete(addr)
		s.log.Info("closing listener no longer in config", zap.String("addr", addr))
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = shutdownListener(ctx, l)
		}()
	}
	return nil
}

// Shutdown stops accepting on every address at once, waits for in-flight
// requests to finish until ctx is done, then closes the connections that are
// left. It returns ctx.Err() when the deadline cut requests off.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	qs := s.takeQUICLocked()
	ls := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.listeners = map[string]*listener{}
	s.mu.Unlock()

	errs := make(chan error, len(ls)+len(qs))
	for _, q := range qs {
		go func() { errs <- q.shutdown(ctx) }()
	}
	for _, l := range ls {
		go func() { errs <- shutdownListener(ctx, l) }()
	}
	var first error
	for range len(ls) + len(qs) {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	s.router.Load().close()
	s.acme.close()
	if s.ownCache {
		_ = s.cache.Close()
	}
	return first
}

// deps are what every router of s is built with.
func (s *Server) deps() deps {
	return deps{files: s.files, logs: s.logs, apps: s.apps, log: s.log, groups: s.groups, bound: s.boundAddr, cache: s.cache, acme: s.acme}
}

func shutdownListener(ctx context.Context, l *listener) error {
	err := l.srv.Shutdown(ctx)
	if err != nil {
		_ = l.srv.Close()
	}
	<-l.done
	return err
}

// listenerHandler routes a request on one address to a site of the
// current config.
type listenerHandler struct {
	srv  *Server
	addr string
	// bodyTimeout is body_timeout: how long a request body may stall.
	bodyTimeout time.Duration
}

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.bodyTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = &idleBody{ReadCloser: r.Body, ctl: http.NewResponseController(w), timeout: h.bodyTimeout}
	}
	// ACME validations come over plain HTTP to any site's address (port
	// 80), before routing: a redirect to HTTPS would fail them.
	if r.TLS == nil && h.srv.acme.handleHTTPChallenge(w, r) {
		return
	}
	st := h.srv.router.Load().site(h.addr, r)
	if st == nil {
		// The address left the config while this connection was open.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusMisdirectedRequest)
		return
	}
	h.srv.advertiseHTTP3(w, r, st, h.addr)
	if st.access != nil && !st.unlogged(r) {
		st.serveLogged(w, r)
		return
	}
	st.serve(w, r)
}

// idleBody is a request body whose every read must make progress within
// timeout: body_timeout bounds a pause in the upload, counted from the end
// of the headers, as nginx's client_body_timeout does, so a large upload
// over a slow link that keeps moving is never cut. Pushing the deadline
// forward on every read is cheap: edgeConn re-arms a later deadline only
// when the armed one fires.
type idleBody struct {
	io.ReadCloser
	ctl     *http.ResponseController
	timeout time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	return b.ReadCloser.Read(p)
}

var _ http.Handler = (*listenerHandler)(nil)
