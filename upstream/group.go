package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Group is a set of servers with one balancing policy and one health
// state. It is safe for concurrent use; build it once per config load
// and Close it when the config is replaced.
type Group struct {
	name        string
	cfg         Config // defaulted; read-only after NewGroup
	log         *zap.Logger
	backends    []*backend // config order
	primaries   []*backend
	backups     []*backend
	choose      chooser
	failStatus  statusSet
	retryStatus statusSet
	// needsLength: some server speaks uwsgi, whose packet announces the
	// body's length up front, so a chunked body is spooled even with
	// buffering off (as nginx does).
	needsLength bool

	// mu guards the health and balancing fields of every backend, rng
	// and the scratch slices. Critical sections are a scan over the
	// servers, never I/O.
	mu    sync.Mutex
	rng   *rand.Rand
	cands []*backend // scratch for pick
	ties  []*backend // scratch for least_conn

	stop      context.CancelFunc // ends active checks
	checks    sync.WaitGroup
	closeOnce sync.Once
}

// backend is one server and its state.
type backend struct {
	url    string // as configured; the name in logs and Status
	weight int
	backup bool
	tr     transport
	hash   uint64 // of url, mixed into consistent hashing

	active atomic.Int64 // requests in flight (response not yet closed)

	// Guarded by Group.mu.
	cw          int       // smooth weighted round robin: current weight
	fails       int       // passive failures in the window
	windowStart time.Time // start of the passive failure window
	passiveDown bool      // marked down by passive checks, not yet seen working
	downUntil   time.Time // while passiveDown: no requests before this
	activeDown  bool      // marked down by active checks
	passes      int       // consecutive active passes
	checkFails  int       // consecutive active failures
	lastFail    time.Time // any failure, passive or active
	lastErr     string
}

// NewGroup validates cfg, builds one transport per server and starts
// active health checks when cfg.Health is set. log may be nil.
func NewGroup(cfg Config, log *zap.Logger) (*Group, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = withDefaults(cfg)
	if err := validate(cfg); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", displayName(cfg.Name), err)
	}
	g := &Group{
		name:        cfg.Name,
		cfg:         cfg,
		log:         log.With(zap.String("upstream", displayName(cfg.Name))),
		choose:      chooserFor(cfg.Balance),
		failStatus:  newStatusSet(cfg.FailStatus),
		retryStatus: newStatusSet(cfg.RetryStatus),
		rng:         rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	var tlsCfg *tls.Config
	for _, s := range cfg.Servers {
		ep, err := parseServerURL(s.URL)
		if err == nil && ep.scheme == "https" && tlsCfg == nil {
			tlsCfg, err = newTLSConfig(&cfg)
		}
		var tr transport
		if err == nil {
			tr, err = newTransport(ep, &cfg, tlsCfg)
		}
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("upstream %s: server %s: %w", displayName(cfg.Name), s.URL, err)
		}
		g.needsLength = g.needsLength || ep.scheme == "uwsgi" || ep.scheme == "uwsgi+unix"
		b := &backend{url: s.URL, weight: s.Weight, backup: s.Backup, tr: tr, hash: hashString(s.URL)}
		g.backends = append(g.backends, b)
		if b.backup {
			g.backups = append(g.backups, b)
		} else {
			g.primaries = append(g.primaries, b)
		}
	}
	if len(g.primaries) == 0 {
		// All backups: there is nothing to back up, so they serve.
		g.primaries, g.backups = g.backups, nil
	}
	g.cands = make([]*backend, 0, len(g.backends))
	g.ties = make([]*backend, 0, len(g.backends))
	if cfg.Health != nil {
		ctx, cancel := context.WithCancel(context.Background())
		g.stop = cancel
		g.checks.Add(1)
		go g.runChecks(ctx)
	}
	return g, nil
}

// Close stops active checks (waiting for the round in progress) and
// closes idle connections. Requests in flight finish; the group stays
// usable, opening new connections as needed. Safe to call twice.
func (g *Group) Close() {
	g.closeOnce.Do(func() {
		if g.stop != nil {
			g.stop()
		}
		g.checks.Wait()
		for _, b := range g.backends {
			closeIdle(b.tr.rt)
		}
	})
}

// Name is the group's configured name ("" for an inline proxy).
func (g *Group) Name() string { return g.name }

// GroupStatus is a snapshot of a group for the upstream_status handler.
type GroupStatus struct {
	Name    string         `json:"name"`
	Balance string         `json:"balance"`
	Servers []ServerStatus `json:"servers"`
}

// ServerStatus is one server's state at the time of the snapshot.
type ServerStatus struct {
	URL    string `json:"url"`
	Up     bool   `json:"up"` // would be given requests now
	Backup bool   `json:"backup"`
	Weight int    `json:"weight"`
	// Active is requests in flight, including open WebSocket tunnels.
	Active int64 `json:"active"`
	// Fails is passive failures within the current fail_timeout window.
	Fails int `json:"fails"`
	// Health is the active check verdict: "up", "down", or "" when
	// active checks are off.
	Health        string    `json:"health,omitempty"`
	DownUntil     time.Time `json:"down_until,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// Status returns a snapshot of every server, in config order.
func (g *Group) Status() GroupStatus {
	now := time.Now()
	st := GroupStatus{Name: g.name, Balance: g.cfg.Balance, Servers: make([]ServerStatus, 0, len(g.backends))}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.backends {
		ss := ServerStatus{
			URL:           b.url,
			Up:            g.availableLocked(b, now),
			Backup:        b.backup,
			Weight:        b.weight,
			Active:        b.active.Load(),
			Fails:         g.recentFailsLocked(b, now),
			LastError:     b.lastErr,
			LastErrorTime: b.lastFail,
		}
		if g.cfg.Health != nil {
			ss.Health = "up"
			if b.activeDown {
				ss.Health = "down"
			}
		}
		if b.passiveDown && now.Before(b.downUntil) {
			ss.DownUntil = b.downUntil
		}
		st.Servers = append(st.Servers, ss)
	}
	return st
}

// displayName names inline groups in logs and errors.
func displayName(name string) string {
	if name == "" {
		return "(inline)"
	}
	return name
}

// statusSet is a set of HTTP status codes 0-639, allocation-free to test.
type statusSet [10]uint64

func newStatusSet(codes []int) statusSet {
	var s statusSet
	for _, c := range codes {
		if c >= 0 && c < 640 {
			s[c/64] |= 1 << (c % 64)
		}
	}
	return s
}

func (s *statusSet) has(code int) bool {
	return code >= 0 && code < 640 && s[code/64]&(1<<(code%64)) != 0
}
