package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A server is available when neither check says it is down. Passive
// and active verdicts are kept apart: active checks alone flip
// activeDown, real traffic alone flips passiveDown, so a health URI that
// answers while the app fails (or the reverse) cannot hide the other.

// availableLocked reports whether b may be given requests now.
func (g *Group) availableLocked(b *backend, now time.Time) bool {
	return !b.activeDown && (!b.passiveDown || !now.Before(b.downUntil))
}

// recentFailsLocked is b's passive failure count in the current window.
func (g *Group) recentFailsLocked(b *backend, now time.Time) int {
	if b.fails > 0 && now.Sub(b.windowStart) > g.cfg.FailTimeout {
		return 0
	}
	return b.fails
}

// recordFailure counts a passive failure: a connect error, a timeout or
// other transport error, or a response status in FailStatus. MaxFails
// of them within FailTimeout mark b down for FailTimeout. A failed probe
// (the first request after a down period) keeps it down for another
// period at once.
func (g *Group) recordFailure(b *backend, cause string) {
	now := time.Now()
	g.mu.Lock()
	b.lastFail, b.lastErr = now, cause
	marked := false
	if g.cfg.MaxFails > 0 {
		if b.passiveDown {
			b.downUntil = now.Add(g.cfg.FailTimeout)
		} else {
			if b.fails == 0 || now.Sub(b.windowStart) > g.cfg.FailTimeout {
				b.fails, b.windowStart = 0, now
			}
			b.fails++
			if b.fails >= g.cfg.MaxFails {
				b.passiveDown, b.downUntil, marked = true, now.Add(g.cfg.FailTimeout), true
			}
		}
	}
	fails := b.fails
	g.mu.Unlock()
	if marked {
		g.log.Warn("upstream server down", zap.String("server", b.url), zap.String("cause", cause),
			zap.Int("fails", fails), zap.Duration("retry_after", g.cfg.FailTimeout))
	}
}

// recordSuccess notes a response that was not a failure. It clears a
// passive down mark (the probe after fail_timeout worked); within an
// unexpired window it does not reset the count, as in nginx: max_fails
// counts failures per window, not consecutive ones.
func (g *Group) recordSuccess(b *backend) {
	if g.cfg.MaxFails == 0 {
		return
	}
	g.mu.Lock()
	wasDown := b.passiveDown
	if wasDown {
		b.passiveDown, b.fails, b.downUntil = false, 0, time.Time{}
	}
	g.mu.Unlock()
	if wasDown {
		g.log.Info("upstream server up", zap.String("server", b.url), zap.String("cause", "request succeeded after fail_timeout"))
	}
}

// maxHealthBody is how much of a check's response body is read so the
// connection can be reused; the body itself is not judged.
const maxHealthBody = 64 << 10

// runChecks is the active checker: one round at once, then one per
// Interval, until ctx ends. Servers start up, so a group serves before
// its first round completes.
func (g *Group) runChecks(ctx context.Context) {
	defer g.checks.Done()
	t := time.NewTicker(g.cfg.Health.Interval)
	defer t.Stop()
	for {
		g.checkRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkRound checks every server concurrently, so one slow server
// cannot delay the verdict on the others beyond Timeout.
func (g *Group) checkRound(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range g.backends {
		wg.Go(func() {
			err := g.check(ctx, b)
			if ctx.Err() != nil {
				return // shutting down: not the server's fault
			}
			g.recordCheck(b, err)
		})
	}
	wg.Wait()
}

// check GETs the health URI on b through its own transport (so it uses
// and warms the same pool), reads a bounded body and judges the status.
func (g *Group) check(ctx context.Context, b *backend) error {
	h := g.cfg.Health
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.tr.scheme+"://"+b.tr.host+h.URI, nil)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	req.Header.Set("User-Agent", "tandem-health-check")
	resp, err := b.tr.rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBody))
	resp.Body.Close()
	if resp.StatusCode != h.Status {
		return fmt.Errorf("health check: status %d, want %d", resp.StatusCode, h.Status)
	}
	if err != nil {
		return fmt.Errorf("health check: reading body: %w", err)
	}
	return nil
}

// recordCheck applies one check result: Fails consecutive failures mark
// b down, Passes consecutive passes mark it up again.
func (g *Group) recordCheck(b *backend, err error) {
	h := g.cfg.Health
	g.mu.Lock()
	var flipped bool
	if err == nil {
		b.checkFails = 0
		b.passes++
		if b.activeDown && b.passes >= h.Passes {
			b.activeDown, flipped = false, true
		}
	} else {
		b.passes = 0
		b.checkFails++
		b.lastFail, b.lastErr = time.Now(), err.Error()
		if !b.activeDown && b.checkFails >= h.Fails {
			b.activeDown, flipped = true, true
		}
	}
	passes, fails := b.passes, b.checkFails
	g.mu.Unlock()
	switch {
	case flipped && err != nil:
		g.log.Warn("upstream server down", zap.String("server", b.url), zap.String("cause", err.Error()),
			zap.Int("consecutive_fails", fails))
	case flipped:
		g.log.Info("upstream server up", zap.String("server", b.url),
			zap.String("cause", "health check passed"), zap.Int("consecutive_passes", passes))
	}
}
