// Package upstream is tandem's reverse proxy: it sends requests to
// groups of backend servers over HTTP/1.1 (TCP or a unix socket) or
// HTTPS, spreads them by a balancing policy, watches the servers'
// health, retries where that is safe, and streams responses back.
//
// # Design
//
// A Group (NewGroup) is one `upstream` block, or the servers of one
// inline `proxy` directive. Each server gets its own transport, so
// per-server settings and keep-alive pools (sized by Keepalive) never
// mix. The transport is chosen by URL scheme in one switch
// (newTransport): http:// and unix: use h1Transport, tandem's HTTP/1.1
// client, which runs a whole exchange on the caller's goroutine with the
// standard library's request writer and response parser (net/http's
// Transport spends three goroutines per connection, which against app
// servers that close every connection, like gunicorn's sync workers,
// cost more than the proxying); https:// uses net/http's Transport (TLS,
// HTTP/2); uwsgi:// and uwsgi+unix: use upstream/uwsgi.
//
// A Handler (Group.Handler) is one proxy location: the group plus the
// location's header rules, body buffering and trusted proxies. It is a
// net/http/httputil.ReverseProxy with a Rewrite hook, so hop-by-hop
// headers (RFC 9110 §7.6.1), 1xx responses, trailers, WebSocket and
// other 101 upgrades, and flushing are the standard library's. What is
// ours is its Transport, the retrier: it picks a server per attempt and
// applies the retry rules (see retry.go), so the ReverseProxy sees one
// round trip however many servers were tried. Per-request state travels
// in the request context.
//
// Balancing (balance.go) is nginx's: smooth weighted round robin,
// least_conn, random_two (power of two choices), and consistent hashing
// (weighted rendezvous) of the client IP, a header or a cookie. Backups
// serve only when no primary is up; if every server is down the one that
// failed longest ago is tried anyway rather than failing outright.
//
// Health (health.go) is passive — MaxFails failures (transport errors,
// timeouts, FailStatus responses) within FailTimeout take a server out
// for FailTimeout, after which one request probes it — and, when Health
// is set, active: a goroutine per group GETs the health URI on every
// server each Interval. Both verdicts must be "up" for a server to get
// traffic; every transition is logged.
//
// Errors are not written by the proxy: Serve returns 502 or 504 (499
// when the client left) so the edge can answer with its error pages.
// Details (server, cause) go to the log, never to the client.
//
// # Left to others
//
// The conf package parses and defaults the configuration; edge maps a
// location to a Handler, expands $variables (HandlerOptions.Expand) and
// writes error statuses. Request body size limits are the edge's.
//
// # Pitfalls
//
//   - Buffering (the default) reads the whole request body before the
//     first attempt: a 1 GiB upload is spooled to SpoolDir first. Turn
//     it off for large streaming uploads; such requests are then retried
//     only if no byte of the body was sent. Buffered requests go upstream
//     with Content-Length; request trailers are dropped.
//   - ReadTimeout counts only time spent waiting on the server, not time
//     blocked writing to a slow client. For upgraded connections it is an
//     idle limit over both directions together; WebSocket apps that stay
//     quiet longer must ping.
//   - The Host header is the client's unless proxy_set_header Host says
//     otherwise; an https server's certificate is checked against the
//     server URL's host, not that Host.
//   - A response cut off mid-body (reset, read timeout) aborts the client
//     connection (panic(http.ErrAbortHandler)); the edge must let that
//     panic reach net/http.
//   - Transports must honour the request context while a response body
//     is read: ReadTimeout works by cancelling it.
package upstream
