package static

import (
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"syscall"
	"time"
)

// fileData is a regular file ready to send: stat data and header values
// prepared once, so that serving it formats nothing.
type fileData struct {
	name     string // relative path, for the extension and logs
	modTime  time.Time
	ctype    []string // Content-Type header value
	lastMod  []string // Last-Modified header value
	identity variant
	sidecars []variant // present precompressed files, in Options order
}

// variant is one representation of a file: the file itself or one of its
// precompressed sidecars.
type variant struct {
	t     target
	size  int64
	mod   time.Time
	etag  string      // quoted strong ETag, for precondition checks
	hEtag []string    // prepared header values (cap == len, so a
	hLen  []string    // downstream Header.Add copies instead of aliasing)
	hEnc  []string    // Content-Encoding; nil for the identity variant
	enc   string      // coding name; "" for identity
	body  []byte      // content when held in memory; nil = read from disk
	file  *sharedFile // open descriptor for content on disk; may be nil
}

// statusFor maps a file system error to the status the caller reports.
// Like net/http's toHTTPError it never exposes err's text to clients.
func statusFor(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist),
		errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ENAMETOOLONG),
		errors.Is(err, syscall.ELOOP),
		errors.Is(err, syscall.EINVAL):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// build resolves urlPath and stats everything the answer depends on, but
// reads no content: an unchanged result (equal sigs) lets the caller keep
// the old entry and its bytes.
func (h *Handler) build(urlPath string) *entry {
	e := &entry{}
	rel, slash, ok := cleanPath(urlPath, h.opts.StripPrefix, h.opts.AllowHidden)
	if !ok {
		e.status = http.StatusNotFound
		return e
	}
	e.slash = slash
	t, fi, err := h.fs.locate(rel)
	e.sigs = append(e.sigs, sigOf(rel, fi, err))
	switch {
	case err != nil:
		e.status = statusFor(err)
	case fi.Mode().IsRegular():
		if slash { // "/file.txt/" names a directory that is not there
			e.status = http.StatusNotFound
			return e
		}
		e.kind = File
		e.file = h.statFile(e, rel, t, fi)
	case fi.IsDir():
		e.kind = Dir
		e.dir = t
		if slash {
			h.findIndex(e, rel)
		}
	default: // devices, sockets, FIFOs: never served
		e.status = http.StatusNotFound
	}
	return e
}

// findIndex sets e.file to the first regular Index file in directory rel.
func (h *Handler) findIndex(e *entry, rel string) {
	for _, idx := range h.index {
		name := path.Join(rel, idx)
		t, fi, err := h.fs.locate(name)
		e.sigs = append(e.sigs, sigOf(name, fi, err))
		if err == nil && fi.Mode().IsRegular() {
			e.file = h.statFile(e, name, t, fi)
			return
		}
	}
}

// statFile prepares a file's headers and finds its sidecars.
func (h *Handler) statFile(e *entry, rel string, t target, fi fs.FileInfo) *fileData {
	f := &fileData{
		name:    rel,
		modTime: fi.ModTime(),
		lastMod: []string{fi.ModTime().UTC().Format(http.TimeFormat)},
	}
	f.identity = newVariant(t, fi, "")
	for _, enc := range h.encs {
		name := rel + enc.ext
		st, sfi, err := h.fs.locate(name)
		e.sigs = append(e.sigs, sigOf(name, sfi, err))
		if err == nil && sfi.Mode().IsRegular() {
			v := newVariant(st, sfi, enc.name)
			v.hEnc = enc.hdr
			f.sidecars = append(f.sidecars, v)
		}
	}
	return f
}

// newVariant prepares a representation's ETag and Content-Length. The ETag
// is strong, "<hex mtime ns>-<hex size>", with "-<coding>" for a sidecar
// so caches never confuse encodings.
func newVariant(t target, fi fs.FileInfo, enc string) variant {
	b := make([]byte, 0, 48)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.Size(), 16)
	if enc != "" {
		b = append(b, '-')
		b = append(b, enc...)
	}
	b = append(b, '"')
	etag := string(b)
	return variant{
		t:     t,
		size:  fi.Size(),
		mod:   fi.ModTime(),
		enc:   enc,
		etag:  etag,
		hEtag: []string{etag},
		hLen:  []string{strconv.FormatInt(fi.Size(), 10)},
	}
}

// fill reads the content of small variants into memory and settles the
// Content-Type, sniffing when the extension is unknown.
func (h *Handler) fill(e *entry) {
	f := e.file
	if f == nil {
		return
	}
	limit := h.cache.memLimit()
	h.load(&f.identity, limit)
	for i := range f.sidecars {
		h.load(&f.sidecars[i], limit)
	}
	e.bytes = int64(len(f.identity.body))
	for _, v := range f.sidecars {
		e.bytes += int64(len(v.body))
	}
	f.ctype = []string{h.contentType(f)}
}

// load reads v's content when it is small enough, and otherwise keeps a
// descriptor open for it. A file that changed
// between the stat and the read is left on disk: its sigs are already
// stale, so the next revalidation rebuilds the entry.
func (h *Handler) load(v *variant, limit int64) {
	if v.size > limit {
		h.keepOpen(v)
		return
	}
	fl, err := h.fs.open(v.t)
	if err != nil {
		return
	}
	defer fl.Close()
	buf := make([]byte, v.size)
	if _, err := io.ReadFull(fl, buf); err != nil {
		return
	}
	fi, err := fl.Stat()
	if err != nil || fi.Size() != v.size || !fi.ModTime().Equal(v.mod) {
		return
	}
	v.body = buf
}

// contentType: by extension (mime adds "; charset=utf-8" for text types),
// else sniffed from the first 512 bytes as net/http does.
func (h *Handler) contentType(f *fileData) string {
	if ct := mime.TypeByExtension(path.Ext(f.name)); ct != "" {
		return ct
	}
	if f.identity.body != nil {
		return http.DetectContentType(f.identity.body)
	}
	fl, err := h.fs.open(f.identity.t)
	if err != nil {
		return "application/octet-stream"
	}
	defer fl.Close()
	var buf [512]byte
	n, _ := io.ReadFull(fl, buf[:])
	return http.DetectContentType(buf[:n])
}
