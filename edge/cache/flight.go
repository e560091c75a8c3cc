package cache

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// flight is one upstream fetch that other requests for the same key wait
// on (nginx's proxy_cache_lock). The leader answers its own client while
// it stores; waiters are told the outcome and act on it.
type flight struct {
	done   chan struct{}
	once   sync.Once
	res    flightResult // set before done is closed
	entry  *entry       // the stored entry when res is resStored
	status int          // the upstream status when res is resStale
}

// flightResult tells waiters what to do.
type flightResult uint8

const (
	// resStored: the response was stored; serve it if it matches.
	resStored flightResult = iota
	// resRetry: the fetch was cut off (client gone, body truncated);
	// look up again, possibly leading a new fetch.
	resRetry
	// resPass: the response could not be stored; go upstream directly.
	resPass
	// resStale: the upstream failed and the leader served stale
	// (stale-if-error); do the same if allowed, else go upstream.
	resStale
	// resGone: the waiter's own client went away.
	resGone
	// resTimeout: LockTimeout passed; go upstream directly, uncached.
	resTimeout
)

// maxAttempts bounds how often one request waits on others' fetches
// before going upstream itself.
const maxAttempts = 3

// join returns the flight for key, creating it (leader true) if none.
func (c *Cache) join(key string) (f *flight, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f = c.flights[key]; f != nil {
		return f, false
	}
	f = &flight{done: make(chan struct{})}
	c.flights[key] = f
	return f, true
}

// finish publishes a flight's outcome once; later calls do nothing.
func (c *Cache) finish(key string, f *flight, res flightResult, e *entry) {
	c.finishStatus(key, f, res, e, 0)
}

// finishStatus is finish with the upstream status waiters may report.
func (c *Cache) finishStatus(key string, f *flight, res flightResult, e *entry, status int) {
	if f == nil {
		return
	}
	f.once.Do(func() {
		c.mu.Lock()
		if c.flights[key] == f {
			delete(c.flights, key)
		}
		c.mu.Unlock()
		f.res, f.entry, f.status = res, e, status
		close(f.done)
	})
}

// wait blocks until f finishes, the client leaves, or LockTimeout passes.
func (c *Cache) wait(ctx context.Context, f *flight) (flightResult, *entry) {
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	t := time.NewTimer(c.opts.LockTimeout)
	defer t.Stop()
	select {
	case <-f.done:
		return f.res, f.entry
	case <-ctx.Done():
		return resGone, nil
	case <-t.C:
		return resTimeout, nil
	}
}

// markPass remembers for PassTTL that key's responses are not storable.
func (c *Cache) markPass(key string) {
	if c.opts.PassTTL <= 0 {
		return
	}
	c.mu.Lock()
	c.passes.Add(key, c.now().Add(c.opts.PassTTL))
	c.mu.Unlock()
}

// passing reports whether key is marked as not storable.
func (c *Cache) passing(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.passes.Peek(key)
	if !ok {
		return false
	}
	if c.now().After(until) {
		c.passes.Remove(key)
		return false
	}
	return true
}

// refresh starts one background revalidation of a stale entry
// (stale-while-revalidate, RFC 5861 §3), unless one is already running
// for its key or all background slots are busy.
func (h *handler) refresh(r *http.Request, e *entry) {
	c := h.c
	c.mu.Lock()
	if c.closed || c.flights[e.key] != nil {
		c.mu.Unlock()
		return
	}
	select {
	case c.bgSlots <- struct{}{}:
	default:
		c.mu.Unlock()
		return
	}
	f := &flight{done: make(chan struct{})}
	c.flights[e.key] = f
	c.bg.Add(1)
	c.mu.Unlock()

	// The refresh keeps the request's values (the edge may keep routing
	// state there) but not its cancellation: the client has its answer.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), c.opts.BackgroundTimeout)
	stop := context.AfterFunc(c.closeCtx, cancel)
	br := r.Clone(ctx)
	br.Method = http.MethodGet
	br.Body, br.ContentLength = http.NoBody, 0
	go func() {
		defer c.bg.Done()
		defer func() { <-c.bgSlots }()
		defer stop()
		defer cancel()
		defer func() {
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				c.log.Error("cache: background revalidation panicked", zap.String("key", e.key), zap.Any("panic", p))
			}
		}()
		h.forward(nil, br, fetch{key: e.key, primary: e.primary, stale: e, flight: f, fwd: fwdStale, store: true})
	}()
}
