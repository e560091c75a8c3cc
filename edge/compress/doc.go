// Package compress is the edge's on-the-fly response compression: zstd,
// brotli (br) and gzip, as an http.Handler middleware that wraps any
// location handler (static, proxy, app, respond).
//
//	c, err := compress.New(compress.Options{Algorithms: []string{"zstd", "br", "gzip"}})
//	...
//	h := c.Wrap(locationHandler) // built once per config load
//
// # What it owns
//
//   - Negotiation (negotiate.go): Accept-Encoding q-values per RFC 9110
//     §12.5.3, "*" and identity included; the client's highest weight
//     wins, the configured order breaks ties.
//   - The decision per response (writer.go): compress only a body of an
//     allowed type (Options.Types), of at least Options.MinLength bytes,
//     that is not already encoded. Never: HEAD, 1xx/204/304, Range requests
//     and 206, Cache-Control: no-transform, upgrades and hijacked
//     connections, responses that set Content-Encoding themselves
//     (precompressed sidecars from static win).
//   - Header rules (headers.go): Vary: Accept-Encoding merged into every
//     response of an allowed type, compressed or not; on compressed
//     responses Content-Length and Accept-Ranges removed, a strong ETag
//     weakened (W/), Content-Encoding set.
//   - Streaming: Flush flushes the encoder, then the connection, so
//     server-sent events and long polls work through compression.
//   - Encoder pools (encoders.go): one sync.Pool per algorithm and level
//     in each Compressor, so a request reuses a warm encoder.
//
// # What it leaves to others
//
// The config directives (compress, compress_level, compress_min_length,
// compress_types) belong to conf, which turns them into Options; edge
// builds one Compressor per location and puts Wrap inside the cache step,
// so the cache stores encoded variants keyed by Vary. Precompressed
// sidecars are chosen by static; this package sees their Content-Encoding
// and passes them through.
//
// # Pitfalls
//
//   - A response of unknown length is held back (status, headers and up to
//     MinLength bytes) until the threshold, a Flush or the handler's
//     return. A handler that needs its headers out early must Flush.
//   - The wrapper implements io.ReaderFrom so that responses that are not
//     compressed still reach net/http's sendfile path; any wrapper put
//     between this one and net/http must keep ReaderFrom too.
//   - A handler that keeps writing after ServeHTTP returned (from another
//     goroutine) breaks this package as it breaks net/http.
//   - Without Accept-Encoding nothing is compressed, though RFC 9110 would
//     allow it: clients that omit the header are mostly tools that cannot
//     decode.
package compress
