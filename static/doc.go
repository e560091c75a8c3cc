// Package static is tandem's file handler: the part of nginx that serves
// a root directory.
//
// # What it owns
//
//   - Safe path resolution under Options.Root (resolve.go): no request,
//     however encoded, reads outside Root; hidden segments refused unless
//     AllowHidden, /.well-known/ excepted; symlinks leading out of Root
//     refused unless FollowSymlinks.
//   - Index files, the trailing-slash redirect, autoindex listings.
//   - Validators and conditionals: strong ETag and Last-Modified,
//     If-Match / If-Unmodified-Since / If-None-Match / If-Modified-Since /
//     If-Range in RFC 9110 §13.2.2 order (cond.go).
//   - Range requests: single, multipart/byteranges, 416 (ranges.go).
//   - Precompressed sidecars (file.zst / .br / .gz) chosen by
//     Accept-Encoding q-values in Options order, with Vary and a distinct
//     ETag per encoding (encoding.go).
//   - Expires / Cache-Control: max-age.
//   - The open-file/stat cache shared by all handlers (cache.go, load.go).
//
// # What it leaves to edge
//
// Location matching, try_files (edge calls Lookup, which reports NotFound,
// File or Dir), error_page (Serve returns 404/403/500 without writing, and
// edge renders the page and logs the cause), access logs, on-the-fly
// compression, and anything about hosts or TLS. Serve takes the URL path
// as net/http decoded it (r.URL.Path), or edge's rewrite of it.
//
// # The hot path
//
// A request for a small cached file costs one LRU lookup, one monotonic
// clock read, a handful of header-map lookups for conditionals, and map
// assignments of header values prepared when the entry was loaded (ETag,
// Last-Modified, Content-Type, Content-Length), then a single w.Write of
// the cached bytes: no syscalls, no formatting, no allocations in this
// package (BenchmarkWriterHot1K: 0 allocs/op). What remains is net/http's
// own cost of any handler that sets headers: Header() makes it clone the
// header map at WriteHeader (2-3 allocations), which a bare w.Write
// handler avoids; a bare handler setting the same four headers costs
// exactly the same allocations as Serve.
//
// Measured with wrk -t1 -c32 on the same 2 shared cores (noisy: other
// jobs ran on the box): 1 KiB at 0.77-0.92x (mostly ~0.9x) a bare
// w.Write handler; 100 KiB at 1.05-1.2x nginx (sendfile on,
// open_file_cache); 10 MiB at ~0.7x nginx MB/s with 32 connections but
// 1.5x with one. At 10 MiB the server used ~17% of a core, so the gap is
// not this package's CPU but how quickly the Go runtime refills sockets
// after sendfile hits EAGAIN (netpoll wake-ups); TCP_NODELAY off, a 4 MiB
// SO_SNDBUF and sending headers before the file did not change it.
//
// # Pitfalls
//
//   - Symlinks. Without FollowSymlinks, files are opened through an
//     os.Root, which walks each component with O_NOFOLLOW and refuses links
//     leaving Root, with no check-then-open race. An absolute symlink back
//     into Root is refused by os.Root and then accepted after a
//     filepath.EvalSymlinks check against the real Root; that fallback does
//     have the usual check/open window. With FollowSymlinks anything the
//     process can read through a link under Root is servable.
//
//   - Cache validity. An entry is trusted for CacheConfig.Valid (1s by
//     default) before it is stat'ed again: a file changed or deleted is
//     served from the old entry for up to Valid. Deploy by writing a new
//     file and renaming it over the old one; a file rewritten in place can
//     be caught half-written by a reader, exactly as with nginx. "Not
//     found" is cached for Valid too, and so are the absence of sidecars
//     and index files (a directory's own mtime is part of its entry).
//
//   - sendfile. Files above CacheConfig.MaxFileInMemory are sent from a
//     descriptor the cache keeps open (openfile.go), like nginx's
//     open_file_cache: one per file, shared by every request, reference
//     counted so an entry evicted mid-send never cuts a response short, and
//     read only at explicit offsets. The handler io.Copy's an
//     *io.SectionReader of it to the ResponseWriter; net/http's
//     response.ReadFrom copies the first 512 bytes itself (sniffing) and
//     hands the rest to the connection's ReadFrom, which on the edge's
//     connections is sendfile(2) at an offset. A plain net.TCPConn does not
//     know SectionReader and copies through a buffer; so does a middleware
//     that wraps the ResponseWriter without forwarding io.ReaderFrom, TLS
//     and HTTP/2. TestServe_LargeFile_Sendfile checks what reaches the
//     connection; on a live server it can be confirmed with
//
//     strace -f -c -e trace=sendfile,write -p $(pidof tandem)
//
//     while fetching a large file: sendfile calls carry the body, writes
//     only the headers. At most 1000 descriptors are kept (a quarter of
//     RLIMIT_NOFILE if lower); past that, files are opened per request.
//
//   - Packets. A response written in two pieces (headers plus the first
//     bytes, then the rest) would leave in a short packet of its own,
//     which costs the client a wakeup. For in-memory bodies above ~3.5 KiB
//     and files sent with sendfile, the handler tells the connection
//     (edge/packethint, found in the request context) that more follows; the
//     edge sends the first piece with MSG_MORE, as nginx's tcp_nopush
//     does, and pushes anything still held when the response ends. On a
//     100 KiB file this made the 5 TCP segments per request 4, as nginx's.
//
//   - MaxFileInMemory. 256 KiB by default: at 32 KiB the in-memory path
//     served ~1.6-1.8x the requests of per-request open+sendfile; at
//     100 KiB memory and the shared descriptor are within noise of each
//     other; above, sendfile avoids holding memory for little gain.
//
//   - Header values are shared slices. Serve assigns prepared []string
//     values into the response header map; they have len == cap, so
//     Header.Add and Set downstream are safe, but writing into an element
//     (h["Etag"][0] = ...) would corrupt every later response.
package static
