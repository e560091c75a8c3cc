package cache

import (
	"net/http"
	"strconv"
	"time"
)

// X-Cache values. Each is a shared one-element slice: handlers outside
// the cache must replace header values, never write into them.
var (
	xHit         = []string{"HIT"}
	xMiss        = []string{"MISS"}
	xStale       = []string{"STALE"}
	xBypass      = []string{"BYPASS"}
	xRevalidated = []string{"REVALIDATED"}
)

// Cache-Status fwd values (RFC 9211 §2.2).
const (
	fwdBypass   = "bypass"
	fwdMethod   = "method"
	fwdURIMiss  = "uri-miss"
	fwdVaryMiss = "vary-miss"
	fwdRequest  = "request"
	fwdStale    = "stale"
)

// cacheStatus builds one Cache-Status member (RFC 9211), such as
// "tandem; hit; ttl=60" or "tandem; fwd=uri-miss; fwd-status=200; stored".
type cacheStatus struct {
	hit       bool
	fwd       string
	fwdStatus int
	ttl       time.Duration
	hasTTL    bool
	stored    bool
	collapsed bool
	detail    string
}

func (s cacheStatus) String(name string) string {
	b := make([]byte, 0, 64)
	b = append(b, name...)
	if s.hit {
		b = append(b, "; hit"...)
	}
	if s.fwd != "" {
		b = append(b, "; fwd="...)
		b = append(b, s.fwd...)
	}
	if s.fwdStatus != 0 {
		b = append(b, "; fwd-status="...)
		b = strconv.AppendInt(b, int64(s.fwdStatus), 10)
	}
	if s.hasTTL {
		b = append(b, "; ttl="...)
		b = strconv.AppendInt(b, int64(s.ttl.Truncate(time.Second)/time.Second), 10)
	}
	if s.stored {
		b = append(b, "; stored"...)
	}
	if s.collapsed {
		b = append(b, "; collapsed"...)
	}
	if s.detail != "" {
		b = append(b, "; detail="...)
		b = append(b, s.detail...)
	}
	return string(b)
}

// setStatus writes X-Cache and Cache-Status.
func (c *Cache) setStatus(h http.Header, x []string, s cacheStatus) {
	h["X-Cache"] = x
	h["Cache-Status"] = []string{s.String(c.opts.Name)}
}
