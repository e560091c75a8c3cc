package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
)

// hostLookupTimeout bounds the startup look-up of upstream host names.
const hostLookupTimeout = 5 * time.Second

// unresolvedHost is an upstream host name that did not resolve.
type unresolvedHost struct {
	conf.UpstreamHost
	err error
}

// lookupUpstreamHosts looks up every upstream host name of cfg, each
// name once and several at a time, and returns those that failed.
// nginx refuses to start on an upstream host it cannot resolve; tandem
// looks names up on every connection, so a name that does not resolve
// yet (DNS not up, a service not yet registered) is only warned about:
// `tandem check` prints it, `tandem run` and reloads log it.
func lookupUpstreamHosts(ctx context.Context, cfg *conf.Config, r *net.Resolver) []unresolvedHost {
	hosts := cfg.UpstreamHosts()
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, h := range hosts {
		mu.Lock()
		_, started := errs[h.Host]
		errs[h.Host] = nil
		mu.Unlock()
		if started {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(host string) {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := r.LookupHost(ctx, host)
			mu.Lock()
			errs[host] = err
			mu.Unlock()
		}(h.Host)
	}
	wg.Wait()
	var out []unresolvedHost
	for _, h := range hosts {
		if err := errs[h.Host]; err != nil {
			out = append(out, unresolvedHost{UpstreamHost: h, err: err})
		}
	}
	return out
}

// why says what a failed look-up means for the operator.
func (u unresolvedHost) why() string {
	var dnsErr *net.DNSError
	if errors.As(u.err, &dnsErr) && dnsErr.IsNotFound {
		return "does not resolve"
	}
	return "could not be looked up"
}

// warning is the `tandem check` line for u.
func (u unresolvedHost) warning() string {
	return fmt.Sprintf("%s:%d:%d: warning: upstream host %q %s (%v); requests to %s get 502 until it does",
		u.Pos.File, u.Pos.Line, u.Pos.Col, u.Host, u.why(), u.err, u.URL)
}

// warnUnresolvedHosts logs the upstream host names of cfg that do not
// resolve. It runs beside serving, so a slow DNS server delays nothing.
func warnUnresolvedHosts(cfg *conf.Config, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), hostLookupTimeout)
	defer cancel()
	for _, u := range lookupUpstreamHosts(ctx, cfg, net.DefaultResolver) {
		log.Warn("upstream host "+u.why()+"; requests to it get 502 until it does",
			zap.String("host", u.Host), zap.String("server", u.URL),
			zap.String("at", fmt.Sprintf("%s:%d:%d", u.Pos.File, u.Pos.Line, u.Pos.Col)), zap.Error(u.err))
	}
}
