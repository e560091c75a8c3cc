// Package cache is tandem's response cache: a shared HTTP cache following
// RFC 9111, with the stale-content extensions of RFC 5861 and the
// Cache-Status header of RFC 9211, as an http.Handler middleware that the
// edge puts in front of any location handler (proxy or app).
//
// One Cache (New) is the store: in memory, bounded by bytes (bodies,
// headers, keys and a per-entry overhead estimate) with least-recently-used
// eviction, plus an optional disk tier for bodies too large for memory.
// Each caching location gets its own handler from Wrap with a Policy: a
// default lifetime (`cache 10m;`), a key template, stale windows.
//
// What it does for a GET or HEAD: a fresh stored response is served
// (X-Cache: HIT) with Age; a stale one is revalidated with If-None-Match /
// If-Modified-Since, a 304 refreshing the stored head (REVALIDATED), or
// served while a background refresh runs (stale-while-revalidate, STALE),
// or served when the upstream fails (stale-if-error, STALE). Misses
// (MISS) stream to the client while the body is captured, and concurrent
// misses for one key wait for a single upstream request. Unsafe methods
// invalidate the URLs they touch. Responses vary by the request headers
// their Vary names. PurgeURL, PurgeTag and PurgeHandler remove entries on
// demand.
//
// Left to others: choosing which locations cache and building their
// Policy (edge, from conf), compression (edge/compress, which sits between
// the cache and the handler so that compressed variants are stored), and
// mounting the purge endpoint.
//
// Pitfalls:
//   - The next handler must write its whole response, errors included:
//     stale-if-error only sees a 5xx that was written (or a panic).
//   - Header value slices of hits are shared with the store; a handler
//     wrapped around the cache must replace header values, never modify
//     them in place.
//   - Policy.DefaultTTL caches responses that say nothing about caching.
//     An application that renders per-user pages without Cache-Control:
//     private, Vary: Cookie or Set-Cookie will have one user's page served
//     to another, as with nginx's proxy_cache_valid.
//   - The disk tier is not persistent: New empties it, Close deletes it.
package cache
