package edge

import (
	"context"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge/cache"
)

// NewCache builds the process's response cache from the top-level
// `cache { }` block (nil: every default). One Cache serves every router
// of the process, so it survives reloads; the caller closes it.
func NewCache(store *conf.CacheStore, log *zap.Logger) (*cache.Cache, error) {
	opts := cache.Options{Log: log}
	if store != nil {
		opts.MaxSize = store.MaxSize
		opts.MaxEntrySize = store.MaxEntrySize
		opts.DiskDir = store.DiskDir
		opts.DiskMaxSize = store.DiskMaxSize
		opts.LockTimeout = store.LockTimeout
		opts.PurgeToken = store.PurgeToken
		opts.PurgeAllow = store.PurgeAllow
	}
	return cache.New(opts)
}

// wrapCache puts l behind the process cache with the location's policy.
// conf has checked the policy already; an error here means the two
// disagree, and is reported at the cache line.
func wrapCache(c *cache.Cache, l *location, cc *conf.Cache) (http.Handler, error) {
	h, err := c.Wrap(cachedLocation{l}, cache.Policy{
		DefaultTTL:                cc.TTL,
		Key:                       cc.Key,
		StaleWhileRevalidate:      cc.StaleWhileRevalidate,
		StaleIfError:              cc.StaleIfError,
		IgnoreRequestCacheControl: cc.IgnoreClientCacheControl,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cc.Pos, err)
	}
	return h, nil
}

// cachedCall carries a request's routing state through the cache to
// cachedLocation when it is not the plain one (an internal redirect or a
// path that differs from the URL's); the cache keeps request values,
// background refreshes included.
type cachedCall struct {
	path string
	st   reqState
}

type cachedCallKey struct{}

// cachedLocation is what a caching location's cache wraps: the whole of
// the location's own work (compression, handler, error pages, hand-overs)
// as one handler that always writes its response, so the cache sees every
// status, and stores what the compressor produced.
type cachedLocation struct{ l *location }

func (c cachedLocation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, st := r.URL.Path, reqState{}
	if call, ok := r.Context().Value(cachedCallKey{}).(*cachedCall); ok {
		path, st = call.path, call.st
	}
	c.l.serveUncached(w, r, path, st)
}

// serveCached sends a request through the location's cache, with its
// routing state in the context only when it is not the default one, so a
// plain hit allocates nothing here.
func (l *location) serveCached(w http.ResponseWriter, r *http.Request, path string, st reqState) {
	if path != r.URL.Path || st != (reqState{}) {
		r = r.WithContext(context.WithValue(r.Context(), cachedCallKey{}, &cachedCall{path: path, st: st}))
	}
	l.cache.ServeHTTP(w, r)
}

// purgeBackend is `cache_purge;` as a location handler.
type purgeBackend struct{ h http.Handler }

func (p purgeBackend) Serve(w http.ResponseWriter, r *http.Request) int {
	p.h.ServeHTTP(w, r)
	return 0
}

var (
	_ http.Handler = cachedLocation{}
	_ AppHandler   = purgeBackend{}
)
