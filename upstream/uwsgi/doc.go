// Package uwsgi is an http.RoundTripper that speaks the uwsgi protocol, so
// the edge can proxy to a uWSGI server (`proxy uwsgi://HOST:PORT;` or
// `proxy uwsgi+unix:/PATH;`) as nginx does with uwsgi_pass.
//
// What it owns: encoding a request as a uwsgi packet (a 4-byte header and a
// block of CGI-style vars, built like nginx's uwsgi_params), streaming the
// request body, and parsing the reply, which uWSGI writes as a plain
// HTTP/1.x status line, headers and body.
//
// What it leaves to others: hop-by-hop header removal, X-Forwarded-*
// handling, retries, load balancing and the mapping of errors to statuses
// all belong to package upstream, which wraps this Transport.
//
// Operational pitfalls:
//   - The protocol has no keep-alive: every request dials a new connection.
//   - uWSGI drops a request whose vars block exceeds its --buffer-size,
//     4096 bytes by default, by resetting the connection ("invalid request
//     block size" in its log). Large cookies hit this; run uWSGI with
//     --buffer-size 65535, the protocol's own ceiling.
//   - The body length travels in CONTENT_LENGTH, so a body of unknown length
//     must be spooled before RoundTrip (ErrLengthRequired otherwise).
//   - Security: a client header can only ever become an HTTP_* var. uWSGI
//     treats UWSGI_* vars as instructions (UWSGI_FILE loads and runs a
//     file), and headers spelled with '_' are dropped so X_Forwarded_For
//     cannot pass as X-Forwarded-For.
//   - uWSGI itself trusts two headers (core/protocol.c): X-Forwarded-Proto
//     sets wsgi.url_scheme, overriding HTTPS=on, and X-Forwarded-Ssl: on
//     makes it https. They arrive here as ordinary HTTP_* vars, so whoever
//     builds the request must strip or overwrite them for untrusted
//     clients, or a client picks its own scheme.
//   - Debian's uWSGI reloads on SIGTERM and stops on SIGINT or SIGQUIT.
package uwsgi
