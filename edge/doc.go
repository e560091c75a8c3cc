// Package edge is tandem's web-server tier: it binds the listen addresses,
// picks a site by Host, a location by path, and runs the location's handler
// (static files, return/redirect rules, error pages; later proxy and app).
//
// Everything a request touches is built once per config load into an
// immutable router; Reload builds a new one and swaps a pointer, so a
// request sees one config from start to finish and a reload never fails a
// request. Listeners are owned by the Server, keyed by their configured
// address, and survive reloads that keep the address.
//
// Left to others: parsing and validating the config (conf), file serving
// and path safety (static), compressing responses (edge/compress).
//
// Compression (location.go): a location with `compress` wraps what it
// writes itself in its Compressor, inside the access log; try_files
// fallbacks and error_page targets are handed the unwrapped writer, so
// the location that answers decides. A location without `compress` holds
// no Compressor and wraps nothing.
//
// TLS (tls.go, tlsca.go): each socket decides per accepted connection,
// from the current router, whether the address serves TLS; certificates
// (by SNI), client-certificate policy and protocol settings are the
// router's per-address tls.Config, so they swap with the config. The
// internal CA behind `tls internal` lives in tls_storage.
//
// HTTP/3 (http3.go): a TLS socket with an `http3 on` site also gets a UDP
// socket on the same port, served by quic-go's http3.Server with the same
// listenerHandler; it is opened, kept and drained like the TCP listeners.
// Cleartext HTTP/2 (h2c.go) is net/http's own, switched on per socket.
//
// Pitfalls: limits that net/http applies per listener (header, body, idle
// and write timeouts, max_header_size, max_connections) are fixed when the
// listener opens; a reload that changes them applies to new addresses only
// and logs a warning. An access-log wrapper (and anything else between
// net/http and the handlers) must keep io.ReaderFrom, or large files lose
// the sendfile path. Under TLS the edgeConn stays beneath
// the *tls.Conn, so its write-side state is locked: tls.Conn.Close writes
// a close_notify alert (and sets write deadlines) from whichever
// goroutine closes the connection.
package edge
