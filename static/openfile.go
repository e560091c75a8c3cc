package static

import (
	"os"
	"sync/atomic"
	"syscall"
)

// defaultMaxOpenFiles bounds the descriptors the cache keeps open, like
// nginx's open_file_cache max=N. It is lowered to a quarter of the
// process's descriptor limit so that cached files never starve
// connections.
const defaultMaxOpenFiles = 1000

// sharedFile is one open descriptor of a cached variant, shared by every
// request that sends it. Requests read it only at explicit offsets (pread,
// sendfile with an offset), never through its file offset, so they do not
// disturb one another. Holding it saves each request an open, fstat and
// close, which cost more than sending 100 KiB.
//
// refs counts the cache entry's reference plus one per request sending
// from it; the descriptor is closed when the last one is released, so an
// entry evicted or replaced mid-send never cuts a response short.
type sharedFile struct {
	f    *os.File
	refs atomic.Int32
	open *atomic.Int64 // the cache's count of open shared descriptors
}

// acquire takes a reference for one request. It fails once the last
// reference is gone and the descriptor closed (a request that looked the
// entry up just before it was dropped); the caller then opens the file
// itself.
func (s *sharedFile) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops one reference, closing the descriptor with the last.
func (s *sharedFile) release() {
	if s.refs.Add(-1) == 0 {
		_ = s.f.Close() // read-only: a close error loses nothing
		s.open.Add(-1)
	}
}

// keepOpen gives a variant served from disk a shared descriptor, if the
// cache's budget allows one and the file still is what was stat'ed.
// Without one, requests open the file themselves, as before.
func (h *Handler) keepOpen(v *variant) {
	c := h.cache
	if c.openFiles.Add(1) > c.maxOpenFiles {
		c.openFiles.Add(-1)
		return
	}
	fl, err := h.fs.open(v.t)
	if err == nil {
		var fi os.FileInfo
		if fi, err = fl.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() == v.size && fi.ModTime().Equal(v.mod) {
			s := &sharedFile{f: fl, open: &c.openFiles}
			s.refs.Store(1)
			v.file = s
			return
		}
		_ = fl.Close()
	}
	c.openFiles.Add(-1)
}

// releaseFiles drops the entry's references to its shared descriptors;
// requests still sending keep theirs until they finish.
func (e *entry) releaseFiles() {
	if e.file == nil {
		return
	}
	if s := e.file.identity.file; s != nil {
		s.release()
	}
	for i := range e.file.sidecars {
		if s := e.file.sidecars[i].file; s != nil {
			s.release()
		}
	}
}

// openBody returns a descriptor to read v's content from at explicit
// offsets: the shared one when it can be had (shared is then non-nil and
// must be released), else a fresh one the caller must close.
func (h *Handler) openBody(v *variant) (fl *os.File, shared *sharedFile, err error) {
	if s := v.file; s != nil && s.acquire() {
		return s.f, s, nil
	}
	fl, err = h.fs.open(v.t)
	return fl, nil, err
}

// closeBody undoes openBody.
func closeBody(fl *os.File, shared *sharedFile) {
	if shared != nil {
		shared.release()
		return
	}
	_ = fl.Close()
}

// openFileBudget is defaultMaxOpenFiles, or a quarter of the descriptor
// limit when that is lower.
func openFileBudget() int64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/4 < defaultMaxOpenFiles {
		return int64(lim.Cur / 4)
	}
	return defaultMaxOpenFiles
}
