package edge

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/upstream"
)

// upstreamSet holds the upstream groups one router uses: every named
// `upstream` block and every inline `proxy URL...;`. The groups live as
// long as the router (their health checks stop in router.close), so a
// reload starts new groups with fresh health state.
type upstreamSet struct {
	log    *zap.Logger
	groups map[*conf.Upstream]*upstream.Group
	// order is config order, for the status endpoint.
	order []*upstream.Group
}

func newUpstreamSet(log *zap.Logger) *upstreamSet {
	if log == nil {
		log = zap.NewNop()
	}
	return &upstreamSet{log: log, groups: make(map[*conf.Upstream]*upstream.Group)}
}

// group returns the running group for u, starting it on first use.
func (us *upstreamSet) group(u *conf.Upstream, label string) (*upstream.Group, error) {
	if g := us.groups[u]; g != nil {
		return g, nil
	}
	name := u.Name
	if name == "" {
		name = label
	}
	g, err := upstream.NewGroup(upstreamConfig(name, u), us.log.Named("upstream"))
	if err != nil {
		return nil, err // NewGroup names the upstream
	}
	us.groups[u] = g
	us.order = append(us.order, g)
	return g, nil
}

func upstreamConfig(name string, u *conf.Upstream) upstream.Config {
	c := upstream.Config{
		Name:             name,
		Balance:          u.Balance,
		BalanceKey:       u.BalanceKey,
		MaxFails:         u.MaxFails,
		FailTimeout:      u.FailTimeout,
		FailStatus:       u.FailStatus,
		ConnectTimeout:   u.ConnectTimeout,
		FirstByteTimeout: u.FirstByteTimeout,
		ReadTimeout:      u.ReadTimeout,
		RetryStatus:      u.RetryStatus,
		TLSVerify:        u.TLSVerify,
		TLSCA:            u.TLSCA,
		Keepalive:        u.Keepalive,
	}
	for _, s := range u.Servers {
		c.Servers = append(c.Servers, upstream.Server{URL: s.URL, Weight: s.Weight, Backup: s.Backup})
	}
	if h := u.Health; h != nil {
		c.Health = &upstream.HealthConfig{URI: h.URI, Interval: h.Interval, Timeout: h.Timeout, Status: h.Status, Passes: h.Passes, Fails: h.Fails}
	}
	return c
}

// handler builds a location's proxy handler over its upstream group.
func (us *upstreamSet) handler(p *conf.Proxy, trusted []netip.Prefix, label string) (AppHandler, error) {
	g, err := us.group(p.Upstream, label)
	if err != nil {
		return nil, err
	}
	opts := upstream.HandlerOptions{
		Buffering:      p.Buffering,
		TrustedProxies: trusted,
		Log:            us.log.Named("proxy"),
		Expand:         func(v string, r *http.Request) string { return expandVars(v, r, r.URL.Path) },
	}
	for _, h := range p.SetHeaders {
		opts.SetHeaders = append(opts.SetHeaders, upstream.Header{Name: h.Name, Value: h.Value})
	}
	return g.Handler(opts), nil
}

// close stops every group's health checks and idle connections.
func (us *upstreamSet) close() {
	for _, g := range us.order {
		g.Close()
	}
}

// statusHandler answers `upstream_status;` with every group's state.
func (us *upstreamSet) statusHandler() AppHandler {
	return appHandlerFunc(func(w http.ResponseWriter, r *http.Request) int {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return http.StatusMethodNotAllowed
		}
		all := make([]upstream.GroupStatus, 0, len(us.order))
		for _, g := range us.order {
			all = append(all, g.Status())
		}
		body, err := json.MarshalIndent(map[string]any{"upstreams": all}, "", "  ")
		if err != nil {
			return http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodGet {
			_, _ = w.Write(append(body, '\n'))
		}
		return 0
	})
}

// appHandlerFunc adapts a function to AppHandler.
type appHandlerFunc func(w http.ResponseWriter, r *http.Request) int

func (f appHandlerFunc) Serve(w http.ResponseWriter, r *http.Request) int { return f(w, r) }

// remoteIP is the client address without its port, for $remote_addr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
