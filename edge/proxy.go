package edge

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"sync"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/upstream"
)

// upstreamSet holds the upstream groups one router uses: every named
// `upstream` block and every inline `proxy URL...;`. Groups come from the
// server's groupRegistry, so a reload that leaves an upstream unchanged
// keeps its group running: health marks, active checks and idle
// connections survive it.
type upstreamSet struct {
	log      *zap.Logger
	registry *groupRegistry
	groups   map[*conf.Upstream]*upstream.Group
	// order is config order, for the status endpoint.
	order []*upstream.Group
}

func newUpstreamSet(log *zap.Logger, registry *groupRegistry) *upstreamSet {
	if log == nil {
		log = zap.NewNop()
	}
	if registry == nil {
		registry = newGroupRegistry()
	}
	return &upstreamSet{log: log, registry: registry, groups: make(map[*conf.Upstream]*upstream.Group)}
}

// group returns the running group for u, taking it from the registry on
// first use.
func (us *upstreamSet) group(u *conf.Upstream, label string) (*upstream.Group, error) {
	if g := us.groups[u]; g != nil {
		return g, nil
	}
	key, name := "upstream "+u.Name, u.Name
	if u.Inline {
		// An inline proxy is known by where it is written.
		key, name = "inline "+label, label
	}
	g, err := us.registry.acquire(key, upstreamConfig(name, u), us.log.Named("upstream"))
	if err != nil {
		return nil, err // NewGroup names the upstream
	}
	us.groups[u] = g
	us.order = append(us.order, g)
	return g, nil
}

// groupRegistry counts the routers using each upstream group, keyed by
// name, and stops a group when the last router using it is closed.
type groupRegistry struct {
	mu      sync.Mutex
	current map[string]*groupEntry // the newest group for each key
	refs    map[*upstream.Group]int
}

type groupEntry struct {
	cfg   upstream.Config
	group *upstream.Group
}

func newGroupRegistry() *groupRegistry {
	return &groupRegistry{current: make(map[string]*groupEntry), refs: make(map[*upstream.Group]int)}
}

// acquire returns the running group for key when its config is
// unchanged, else starts a new one (the old keeps serving the routers
// that hold it until they are closed).
func (gr *groupRegistry) acquire(key string, cfg upstream.Config, log *zap.Logger) (*upstream.Group, error) {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if e := gr.current[key]; e != nil && reflect.DeepEqual(e.cfg, cfg) {
		gr.refs[e.group]++
		return e.group, nil
	}
	g, err := upstream.NewGroup(cfg, log)
	if err != nil {
		return nil, err
	}
	gr.current[key] = &groupEntry{cfg: cfg, group: g}
	gr.refs[g] = 1
	return g, nil
}

// release drops one router's hold on g and stops it after the last.
func (gr *groupRegistry) release(g *upstream.Group) {
	gr.mu.Lock()
	gr.refs[g]--
	last := gr.refs[g] <= 0
	if last {
		delete(gr.refs, g)
		for key, e := range gr.current {
			if e.group == g {
				delete(gr.current, key)
			}
		}
	}
	gr.mu.Unlock()
	if last {
		g.Close()
	}
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

// close releases the router's groups; the registry stops those no other
// router uses.
func (us *upstreamSet) close() {
	for _, g := range us.order {
		us.registry.release(g)
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
