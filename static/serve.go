package static

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/edge/packethint"
)

// Handler serves files under one Root with one set of Options. Build it
// with New; it is safe for concurrent use and never mutated after New,
// apart from its cache and the per-second Expires value.
type Handler struct {
	opts     Options
	cache    *Cache
	ownCache bool // cache was made by New (nil passed) and is closed by Close
	id       uint64
	fs       *fsys
	index    []string
	encs     []sidecarEnc

	// Prepared header values, shared by every response (never mutated).
	vary         []string // Vary: Accept-Encoding, for files with sidecars
	cacheControl []string // Cache-Control: max-age=N, when Expires > 0
	expires      atomic.Pointer[expiresValue]
}

// expiresValue is the Expires header for one wall-clock second, so the
// date is formatted once per second rather than per request.
type expiresValue struct {
	sec int64
	hdr []string
}

var _ http.Handler = (*Handler)(nil)

// hdrAcceptRanges is never mutated; len == cap, so a downstream
// Header.Add reallocates instead of writing into it.
var hdrAcceptRanges = []string{"bytes"}

// New validates opts and prepares everything a request needs. cache may be
// nil, in which case the handler gets a private default cache.
func New(opts Options, cache *Cache) (*Handler, error) {
	h := &Handler{opts: opts}
	if err := h.applyDefaults(); err != nil {
		return nil, err
	}
	fsys, err := newFsys(h.opts.Root, h.opts.FollowSymlinks)
	if err != nil {
		return nil, fmt.Errorf("static: open root: %w", err)
	}
	h.fs = fsys
	if cache == nil {
		cache, h.ownCache = NewCache(CacheConfig{}), true
	}
	h.cache = cache
	h.id = cache.nextID.Add(1)
	return h, nil
}

// applyDefaults fills defaults and validates, preparing header values.
func (h *Handler) applyDefaults() error {
	o := &h.opts
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if !filepath.IsAbs(o.Root) {
		return fmt.Errorf("static: root %q is not absolute", o.Root)
	}
	o.Root = filepath.Clean(o.Root)
	fi, err := os.Stat(o.Root)
	if err != nil {
		return fmt.Errorf("static: root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("static: root %q is not a directory", o.Root)
	}
	h.index = o.Index
	if len(h.index) == 0 {
		h.index = []string{"index.html"}
	}
	for _, idx := range h.index {
		if idx == "" || strings.ContainsAny(idx, "/\\\x00") || idx == "." || idx == ".." {
			return fmt.Errorf("static: index %q must be a plain file name", idx)
		}
	}
	for _, name := range o.Precompressed {
		ext, err := sidecarExt(name)
		if err != nil {
			return fmt.Errorf("static: %w", err)
		}
		h.encs = append(h.encs, sidecarEnc{name: name, ext: ext, hdr: []string{name}})
	}
	if len(h.encs) > 0 {
		h.vary = []string{"Accept-Encoding"}
	}
	if o.Expires > 0 {
		h.cacheControl = []string{"max-age=" + strconv.FormatInt(int64(o.Expires/time.Second), 10)}
	}
	return nil
}

// Close releases the Root directory handle and drops this handler's cache
// entries (a reload retires handlers; their bytes should not linger until
// LRU pressure finds them). Safe to call more than once.
func (h *Handler) Close() error {
	var err error
	if h.fs != nil {
		err = h.fs.close()
	}
	if h.ownCache {
		return errors.Join(err, h.cache.Close())
	}
	if h.cache != nil {
		h.cache.dropHandler(h.id)
	}
	return err
}

// Lookup tells try_files what urlPath names: NotFound, File or Dir.
// Refused paths (escapes, hidden segments, symlinks out of Root) and
// unreadable ones are NotFound. A regular file named with a trailing slash
// is NotFound, as in nginx.
func (h *Handler) Lookup(urlPath string) Kind {
	e := h.entry(urlPath)
	if e.status != 0 {
		return NotFound
	}
	return e.kind
}

// hdrAllow is the Allow header of a 405: a file is only read.
var hdrAllow = []string{"GET, HEAD"}

// ServeHTTP serves r.URL.Path, answering failures with a plain status page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code := h.Serve(w, r, r.URL.Path); code != 0 {
		http.Error(w, http.StatusText(code), code)
	}
}

// Serve writes the response for urlPath, which must be decoded the way
// net/http decodes r.URL.Path (see resolve.go). It returns 0 when it wrote
// a response, or 404, 403 or 500 when it wrote nothing, so that the caller
// can run error_page handling (and log the cause: Serve never puts error
// details into a response). Methods other than GET and HEAD get 405
// returned, with the Allow header set.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, urlPath string) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = hdrAllow
		return http.StatusMethodNotAllowed
	}
	e := h.entry(urlPath)
	if e.status != 0 {
		return e.status
	}
	if e.kind == Dir {
		switch {
		case !e.slash:
			h.redirectToDir(w, r, urlPath)
			return 0
		case e.file == nil && h.opts.Autoindex:
			return h.serveListing(w, r, e, urlPath)
		case e.file == nil:
			return http.StatusForbidden
		}
	}
	return h.serveFile(w, r, e.file)
}

// serveFile runs the RFC steps for one file: pick the representation,
// preconditions (304/412), range (206/416), then the whole body. The usual
// request — GET, no conditionals, no Range, content in memory — assigns
// prepared header slices and makes one Write: no syscalls, no formatting.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, f *fileData) int {
	v := &f.identity
	if len(f.sidecars) > 0 {
		if ae := r.Header["Accept-Encoding"]; len(ae) > 0 {
			v = pickVariant(f, ae)
		}
	}
	hdr := w.Header()
	hdr["Etag"] = v.hEtag
	hdr["Last-Modified"] = f.lastMod
	hdr["Accept-Ranges"] = hdrAcceptRanges
	// Only a file that has sidecars varies by Accept-Encoding; leaving
	// Vary off the rest keeps shared caches from splitting their entries
	// and saves a header on the hot path.
	if h.vary != nil && len(f.sidecars) > 0 {
		hdr["Vary"] = h.vary
	}
	if h.cacheControl != nil {
		hdr["Cache-Control"] = h.cacheControl
		hdr["Expires"] = h.expiresHeader()
	}
	switch code := checkPreconditions(r, v, f); code {
	case 0:
	case http.StatusNotModified:
		// RFC 9110 §15.4.5: validators and caching headers, no content headers.
		delete(hdr, "Accept-Ranges")
		w.WriteHeader(code)
		return 0
	default:
		clearFileHeaders(hdr)
		w.WriteHeader(code)
		return 0
	}
	if rg := r.Header["Range"]; len(rg) > 0 && r.Method == http.MethodGet &&
		checkIfRange(r.Header["If-Range"], v, f) != condFalse {
		return h.serveRanges(w, r, f, v, rg[0])
	}
	if v.body != nil && r.Method == http.MethodGet {
		// The common case, without sendWhole's frame: HTTP/2 runs each
		// request on a fresh goroutine with a small stack, and every frame
		// on the way to Write counts towards growing (copying) it.
		setBodyHeaders(hdr, f, v)
		if len(v.body) > packethint.MinBody {
			packethint.MoreFollows(r)
		}
		w.Write(v.body)
		return 0
	}
	return h.sendWhole(w, r, f, v)
}

// sniffLen is how much net/http's response.ReadFrom copies itself (for
// Content-Type sniffing) before handing the rest to the connection.
const sniffLen = 512

// sendWhole sends all of v with status 200. In-memory content is one
// Write. Disk content goes through io.Copy of an *io.SectionReader over
// the *os.File, which net/http hands to the edge connection's ReadFrom and
// that turns into sendfile(2) at an offset; wrapping w or the reader in
// anything that hides ReadFrom or the SectionReader would silently fall
// back to read+write.
func (h *Handler) sendWhole(w http.ResponseWriter, r *http.Request, f *fileData, v *variant) int {
	hdr := w.Header()
	var fl *os.File
	if v.body == nil && r.Method != http.MethodHead {
		var shared *sharedFile
		var err error
		if fl, shared, err = h.openBody(v); err != nil {
			clearFileHeaders(hdr)
			return statusFor(err)
		}
		defer closeBody(fl, shared)
	}
	setBodyHeaders(hdr, f, v)
	switch {
	case r.Method == http.MethodHead:
		w.WriteHeader(http.StatusOK)
	case v.body != nil:
		w.Write(v.body)
	default:
		// net/http writes the headers with the first 512 bytes, then hands
		// the rest to the connection's ReadFrom (sendfile).
		if v.size > sniffLen {
			packethint.MoreFollows(r)
		}
		h.copyFile(w, f, fl, 0, v.size)
	}
	return 0
}

// copyFile sends n bytes of fl from off. A failure means the client went
// away or the file shrank after the headers went out; net/http closes the
// connection either way, and the second is logged: the client got a cut
// response, and the likely cause is a deploy rewriting files in place
// rather than renaming new ones over them.
func (h *Handler) copyFile(w io.Writer, f *fileData, fl *os.File, off, n int64) bool {
	sent, err := io.Copy(w, io.NewSectionReader(fl, off, n))
	if sent == n {
		return err == nil
	}
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
		h.opts.Log.Warn("file shrank while being sent; client connection cut (replace files by renaming, not in place)",
			zap.String("file", filepath.Join(h.opts.Root, filepath.FromSlash(f.name))),
			zap.Int64("offset", off), zap.Int64("length", n), zap.Int64("sent", sent))
	}
	return false
}

// setBodyHeaders sets the headers of a 200 carrying all of v. Small
// enough to be inlined, so it adds no frame to the hot path.
func setBodyHeaders(hdr http.Header, f *fileData, v *variant) {
	hdr["Content-Type"] = f.ctype
	hdr["Content-Length"] = v.hLen
	if v.hEnc != nil {
		hdr["Content-Encoding"] = v.hEnc
	}
}

// clearFileHeaders removes what serveFile set, before an error status.
func clearFileHeaders(hdr http.Header) {
	for _, k := range [...]string{"Etag", "Last-Modified", "Accept-Ranges", "Cache-Control", "Expires", "Content-Encoding"} {
		delete(hdr, k)
	}
}

// expiresHeader returns "now + Expires" formatted, recomputed once a second.
func (h *Handler) expiresHeader() []string {
	now := time.Now()
	sec := now.Unix()
	if e := h.expires.Load(); e != nil && e.sec == sec {
		return e.hdr
	}
	e := &expiresValue{sec: sec, hdr: []string{now.Add(h.opts.Expires).UTC().Format(http.TimeFormat)}}
	h.expires.Store(e)
	return e.hdr
}

// redirectToDir answers a directory named without its trailing slash with
// 301 to the same path plus "/", keeping the query. The location is built
// from the client's own escaped path when urlPath is it, and any run of
// leading slashes is collapsed so "//evil.example" can never become a
// scheme-relative redirect to another host.
func (h *Handler) redirectToDir(w http.ResponseWriter, r *http.Request, urlPath string) {
	loc := (&url.URL{Path: urlPath}).EscapedPath()
	if urlPath == r.URL.Path {
		loc = r.URL.EscapedPath()
	}
	for strings.HasPrefix(loc, "//") {
		loc = loc[1:]
	}
	loc += "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header()["Location"] = []string{loc}
	w.WriteHeader(http.StatusMovedPermanently)
}
