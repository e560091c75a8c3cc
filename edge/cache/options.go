package cache

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf/cachekey"
)

// Defaults for zero fields of Options and Policy.
const (
	DefaultMaxSize           = 64 << 20
	DefaultDiskMaxSize       = 1 << 30
	DefaultLockTimeout       = 5 * time.Second
	DefaultPassTTL           = 30 * time.Second
	DefaultBackgroundTimeout = 30 * time.Second
	DefaultMaxHeuristic      = 24 * time.Hour
	DefaultKey               = cachekey.Default
	DefaultName              = "tandem"

	// maxBackground bounds concurrent stale-while-revalidate refreshes; a
	// refresh that finds no slot is skipped and tried by a later request.
	maxBackground = 64
	// maxPassMarkers bounds the remembered "not storable" keys.
	maxPassMarkers = 4096
)

// Options configure one Cache: the store, shared by every location that
// caches, and the purge endpoint. They are fixed for the Cache's life.
type Options struct {
	// MaxSize bounds the memory the store holds, in bytes: bodies,
	// headers, keys and a fixed per-entry overhead estimate. Least
	// recently used entries are evicted to stay under it. Default 64 MiB.
	// (`max_size`)
	MaxSize int64
	// MaxEntrySize is the largest body kept in memory, in bytes. Larger
	// responses go to the disk tier when DiskDir is set and are not stored
	// otherwise; they still stream to the client. Default MaxSize/8.
	// (`max_entry_size`)
	MaxEntrySize int64

	// DiskDir enables the disk tier for bodies larger than MaxEntrySize.
	// The directory is created (mode 0700) if missing; it should belong to
	// the cache alone. The tier is not persistent: New deletes body files
	// left by an earlier process, and Close deletes this one's. Empty: no
	// disk tier. (`disk DIR SIZE`)
	DiskDir string
	// DiskMaxSize bounds the bytes of body files in DiskDir. Default 1 GiB.
	DiskMaxSize int64
	// DiskMaxEntrySize is the largest body the disk tier takes. Default
	// DiskMaxSize/8.
	DiskMaxEntrySize int64

	// LockTimeout is how long a request waits for another request's
	// fetch of the same key (miss coalescing) before going upstream
	// itself, uncached, like nginx's proxy_cache_lock_timeout. Default 5s.
	// (`lock_timeout`)
	LockTimeout time.Duration
	// PassTTL is how long a key whose last response could not be stored
	// (private, no-store, Set-Cookie, too large...) skips coalescing, so
	// that requests for uncacheable pages are not serialised behind each
	// other. Default 30s; negative disables.
	PassTTL time.Duration
	// BackgroundTimeout bounds a stale-while-revalidate refresh. Default 30s.
	BackgroundTimeout time.Duration
	// MaxHeuristic caps heuristic freshness (10% of the time since
	// Last-Modified, RFC 9111 §4.2.2). Default 24h.
	MaxHeuristic time.Duration

	// PurgeToken is the bearer token the purge endpoint requires
	// (`Authorization: Bearer TOKEN`). Empty: no token is asked for, and
	// PurgeAllow may then hold loopback prefixes only. (`purge TOKEN`)
	PurgeToken string
	// PurgeAllow lists the client networks the purge endpoint answers.
	// Default 127.0.0.0/8 and ::1. (`purge TOKEN allow CIDR...`)
	PurgeAllow []netip.Prefix

	// Name identifies this cache in Cache-Status (RFC 9211). Default
	// "tandem".
	Name string
	// Log receives disk errors and purge events. Nil: no logging.
	Log *zap.Logger
	// Now is the clock, replaceable in tests. Nil: time.Now.
	Now func() time.Time
}

// Policy is how one location uses the cache. The zero Policy follows
// RFC 9111 alone: only responses that say they may be cached are.
type Policy struct {
	// DefaultTTL is the freshness given to responses without explicit
	// freshness (no s-maxage, max-age or Expires), that are not no-store
	// or private, and whose status is 200, 203, 204, 300, 301 or 308 —
	// like nginx's proxy_cache_valid. It replaces the RFC heuristic for
	// those responses. Zero: RFC heuristics only. (`cache DURATION;`)
	DefaultTTL time.Duration
	// Key is the cache key template: literal text and the variables
	// $scheme, $host, $request_uri, $uri, $args, $is_args, $http_NAME and
	// $cookie_NAME (also written ${name}). Default
	// "$scheme://$host$request_uri". GET and HEAD share keys. (`key`)
	Key string
	// StaleWhileRevalidate lets a stale response be served for this long
	// past its freshness while one background request refreshes it, for
	// responses without their own stale-while-revalidate. Zero: only the
	// response's directive counts. (`stale_while_revalidate`)
	StaleWhileRevalidate time.Duration
	// StaleIfError lets a stale response be served for this long past its
	// freshness when the upstream answers 5xx or cannot be reached, for
	// responses without their own stale-if-error. (`stale_if_error`)
	StaleIfError time.Duration
	// IgnoreRequestCacheControl makes the cache ignore the client's
	// Cache-Control and Pragma (a browser's forced reload then cannot make
	// the cache revalidate), as nginx and Varnish do by default. Default
	// off: request directives are honoured. (`ignore_client_cache_control`)
	IgnoreRequestCacheControl bool
}

// loopback is PurgeAllow's default.
var loopback = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// applyDefaults fills zero fields.
func (o *Options) applyDefaults() {
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxEntrySize == 0 {
		o.MaxEntrySize = o.MaxSize / 8
	}
	if o.DiskDir != "" {
		if o.DiskMaxSize == 0 {
			o.DiskMaxSize = DefaultDiskMaxSize
		}
		if o.DiskMaxEntrySize == 0 {
			o.DiskMaxEntrySize = o.DiskMaxSize / 8
		}
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.PassTTL == 0 {
		o.PassTTL = DefaultPassTTL
	}
	if o.BackgroundTimeout == 0 {
		o.BackgroundTimeout = DefaultBackgroundTimeout
	}
	if o.MaxHeuristic == 0 {
		o.MaxHeuristic = DefaultMaxHeuristic
	}
	if o.PurgeAllow == nil {
		o.PurgeAllow = loopback
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// validate checks filled Options.
func (o *Options) validate() error {
	var errs []error
	if o.MaxSize < 0 {
		errs = append(errs, fmt.Errorf("max_size %d: must not be negative", o.MaxSize))
	}
	if o.MaxEntrySize < 0 || o.MaxEntrySize > o.MaxSize {
		errs = append(errs, fmt.Errorf("max_entry_size %d: must be between 0 and max_size %d", o.MaxEntrySize, o.MaxSize))
	}
	if o.DiskDir != "" && (o.DiskMaxSize <= 0 || o.DiskMaxEntrySize <= 0 || o.DiskMaxEntrySize > o.DiskMaxSize) {
		errs = append(errs, fmt.Errorf("disk %s: size %d and entry size %d must be positive, entry size at most size", o.DiskDir, o.DiskMaxSize, o.DiskMaxEntrySize))
	}
	if o.LockTimeout < 0 || o.BackgroundTimeout < 0 || o.MaxHeuristic < 0 {
		errs = append(errs, errors.New("lock_timeout, background timeout and max heuristic must not be negative"))
	}
	if o.PurgeToken == "" {
		for _, p := range o.PurgeAllow {
			if !p.Addr().Unmap().IsLoopback() {
				errs = append(errs, fmt.Errorf("purge allow %s: a non-loopback network needs a purge token", p))
			}
		}
	}
	return errors.Join(errs...)
}

// compiled is a Policy ready for requests.
type compiled struct {
	Policy
	key *keyTemplate
}

// compile validates a Policy and fills its defaults.
func (p Policy) compile() (*compiled, error) {
	if p.DefaultTTL < 0 || p.StaleWhileRevalidate < 0 || p.StaleIfError < 0 {
		return nil, errors.New("cache policy: durations must not be negative")
	}
	if p.Key == "" {
		p.Key = DefaultKey
	}
	k, err := compileKey(p.Key)
	if err != nil {
		return nil, fmt.Errorf("cache key %q: %w", p.Key, err)
	}
	return &compiled{Policy: p, key: k}, nil
}

// Validate reports whether p can be used with Wrap, so a config checker
// can reject a bad key template before serving.
func (p Policy) Validate() error {
	_, err := p.compile()
	return err
}
