package cache

import (
	"net/http"
	"time"

	"go.uber.org/zap"
)

// startCapture prepares the body buffer: exact when Content-Length is
// known and fits in memory, the disk tier when it is known not to.
func (fw *fetchWriter) startCapture() {
	c := fw.h.c
	switch {
	case fw.declared > c.opts.MaxEntrySize:
		fw.spill()
	case fw.declared > 0:
		fw.buf = make([]byte, 0, fw.declared)
	}
}

// capture appends a body chunk to the entry being built, moving to the
// disk tier past MaxEntrySize and giving up past the last limit. Failures
// only stop the capture: the client's response goes on.
func (fw *fetchWriter) capture(p []byte) {
	c := fw.h.c
	fw.n += int64(len(p))
	if fw.disk == nil && fw.n > c.opts.MaxEntrySize {
		if c.disk == nil || fw.n > c.opts.DiskMaxEntrySize {
			fw.abort(resPass, true)
			return
		}
		if fw.spill(); fw.disk == nil {
			return
		}
	}
	if fw.disk == nil {
		fw.buf = append(fw.buf, p...)
		return
	}
	if fw.n > c.opts.DiskMaxEntrySize {
		fw.abort(resPass, true)
		return
	}
	if err := fw.disk.write(p); err != nil {
		fw.diskFailed(err)
	}
}

// spill moves the capture to a disk tier file.
func (fw *fetchWriter) spill() {
	dw, err := fw.h.c.disk.begin()
	if err != nil {
		fw.diskFailed(err)
		return
	}
	if len(fw.buf) > 0 {
		if err := dw.write(fw.buf); err != nil {
			dw.abort()
			fw.diskFailed(err)
			return
		}
	}
	fw.buf, fw.disk = nil, dw
}

// diskFailed logs a disk tier error (a full disk, say) and gives up on
// storing; the response itself is unaffected.
func (fw *fetchWriter) diskFailed(err error) {
	fw.h.c.log.Error("cache: disk tier write failed; response passed through unstored",
		zap.String("key", fw.f.key), zap.Error(err))
	fw.abort(resPass, false)
}

// revalidated handles a 304 to the cache's conditional request: the
// stored head is updated with the 304's fields (RFC 9111 §4.3.4), stored
// again with the same body, and served.
func (fw *fetchWriter) revalidated(now time.Time) {
	c, f, old := fw.h.c, fw.f, fw.f.stale
	merged := mergeHeaders(old.header, fw.hdr)
	a := fw.h.analyze(old.status, merged, fw.r.Header["Authorization"] != nil, now)
	e := fw.h.newEntry(old.status, merged, &a, fw.reqTime, now)
	e.key, e.primary, e.secondary, e.url = old.key, old.primary, old.secondary, old.url
	e.vary = old.vary // the variant stays where it is
	e.body, e.file, e.bodyLen = old.body, old.file, old.bodyLen
	stored := false
	switch {
	case a.why == "" && f.store:
		stored = c.put(e, old)
	case a.why == whyNoStore || a.why == whyPrivate:
		c.remove(old) // the origin withdrew permission to store
	}
	if stored {
		c.finish(f.key, f.flight, resStored, e)
	} else {
		c.finish(f.key, f.flight, resPass, nil)
	}
	if fw.client == nil {
		return
	}
	c.stats.revalidated.Add(1)
	s := cacheStatus{fwd: f.fwd, fwdStatus: http.StatusNotModified, ttl: e.lifetime - e.currentAge(now), hasTTL: true, stored: stored}
	if !fw.h.serveStoredAs(fw.client, fw.r, e, now, xRevalidated, s) {
		// The disk body was evicted while revalidating; the 304 has none.
		c.setStatus(fw.client.Header(), xMiss, cacheStatus{fwd: f.fwd, fwdStatus: http.StatusNotModified, detail: "body-lost"})
		http.Error(fw.client, "502 bad gateway", http.StatusBadGateway)
	}
}

// serveStaleOnError answers the client with the stale entry when the
// upstream failed and stale-if-error allows (RFC 5861 §4).
func (fw *fetchWriter) serveStaleOnError(code int) bool {
	c, f := fw.h.c, fw.f
	if fw.client == nil {
		return false
	}
	if !fw.h.serveStaleAfterError(fw.client, fw.r, f.stale, &f.rd, code) {
		return false
	}
	c.finishStatus(f.key, f.flight, resStale, nil, code)
	return true
}
