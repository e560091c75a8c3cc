package appserver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// spoolMem is how much of a request or response body stays in memory; the
// rest goes to an unlinked temp file in the runtime dir. 1 MiB keeps
// typical pages in memory while a 100 MiB upload costs disk, not RAM.
const spoolMem = 1 << 20

// spool is a body held in memory up to spoolMem bytes, the rest in an
// unlinked temp file. It is written once, then read (possibly in ranges).
type spool struct {
	dir  string
	mem  []byte
	box  *[]byte  // memPool's holder of mem, reused to give it back
	file *os.File // overflow, already unlinked; nil while it fits in mem
	n    int64
}

// memPool recycles the in-memory part; only modest buffers go back so
// one large response does not pin a megabyte per pooled entry forever.
var memPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const memPoolMax = 256 << 10

// storageError is a failure to keep a body on local disk — a full disk,
// an unwritable runtime dir: tandem's trouble, not the client's, so it
// answers 500 and is logged as an error.
type storageError struct{ err error }

func (e *storageError) Error() string { return "spool to disk: " + e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

func newSpool(dir string) *spool {
	s := new(spool)
	s.init(dir)
	return s
}

// init readies a zero (or closed) spool.
func (s *spool) init(dir string) {
	bp := memPool.Get().(*[]byte)
	*s = spool{dir: dir, mem: (*bp)[:0], box: bp}
}

// Len is the number of bytes written.
func (s *spool) Len() int64 { return s.n }

func (s *spool) Write(p []byte) (int, error) {
	total := len(p)
	if s.file == nil {
		room := spoolMem - len(s.mem)
		if len(p) <= room {
			s.mem = append(s.mem, p...)
			s.n += int64(len(p))
			return total, nil
		}
		s.mem = append(s.mem, p[:room]...)
		s.n += int64(room)
		p = p[room:]
		if err := s.spill(); err != nil {
			return total - len(p), err
		}
	}
	m, err := s.file.Write(p)
	s.n += int64(m)
	if err != nil {
		return total - len(p) + m, &storageError{err}
	}
	return total, nil
}

// ReadFrom reads src to EOF, straight into the memory part while it has
// room.
func (s *spool) ReadFrom(src io.Reader) (int64, error) {
	var total int64
	for s.file == nil {
		if len(s.mem) == cap(s.mem) {
			if cap(s.mem) >= spoolMem {
				if err := s.spill(); err != nil {
					return total, err
				}
				break
			}
			nb := make([]byte, len(s.mem), min(max(2*cap(s.mem), 64<<10), spoolMem))
			copy(nb, s.mem)
			s.mem = nb
		}
		m, err := src.Read(s.mem[len(s.mem):cap(s.mem)])
		s.mem = s.mem[:len(s.mem)+m]
		s.n += int64(m)
		total += int64(m)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	// Through fileWriter, so a failed write is told apart from a failed
	// read of src.
	m, err := io.Copy(fileWriter{s.file}, src)
	s.n += m
	total += m
	return total, err
}

// fileWriter marks the spool file's write errors as storageErrors.
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = &storageError{err}
	}
	return n, err
}

func (s *spool) spill() error {
	f, err := os.CreateTemp(s.dir, "body-*")
	if err != nil {
		return &storageError{err}
	}
	// Unlinked at once: the data never outlives the descriptor, even if
	// tandem is killed.
	os.Remove(f.Name())
	s.file = f
	return nil
}

// WriteRange writes bytes [off, off+n) to w: memory first, then the file
// (through io.CopyN on the *os.File so net/http can use sendfile).
func (s *spool) WriteRange(w io.Writer, off, n int64) error {
	if off < int64(len(s.mem)) {
		end := min(off+n, int64(len(s.mem)))
		if _, err := w.Write(s.mem[off:end]); err != nil {
			return err
		}
		n -= end - off
		off = end
	}
	if n == 0 {
		return nil
	}
	if s.file == nil {
		return errors.New("spool: range past the end")
	}
	if _, err := s.file.Seek(off-int64(len(s.mem)), io.SeekStart); err != nil {
		return err
	}
	_, err := io.CopyN(w, s.file, n)
	return err
}

// Reader returns the whole content from the start.
func (s *spool) Reader() (io.Reader, error) {
	if s.file == nil {
		return newBytesReader(s.mem), nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.MultiReader(newBytesReader(s.mem), s.file), nil
}

// Close frees the file and returns the memory to the pool.
func (s *spool) Close() {
	if s == nil {
		return
	}
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	if cap(s.mem) <= memPoolMax && s.box != nil {
		*s.box = s.mem[:0]
		memPool.Put(s.box)
	}
	s.mem, s.box = nil, nil
}

// bytesReader is a minimal io.Reader over a slice (bytes.Reader without
// the seek state we do not need).
type bytesReader struct{ b []byte }

func newBytesReader(b []byte) *bytesReader { return &bytesReader{b: b} }

func (r *bytesReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// respBody is a buffered response: data from D frames in a spool and files
// from F frames, in order. It lives inside the exchange (init, not new), so
// a small response allocates nothing for it.
type respBody struct {
	data   spool
	parts  []part
	inline [2]part // parts' first backing array
	size   int64
}

// part is a run of spooled data (file == nil) or a range of a file the
// worker passed.
type part struct {
	file   *os.File
	off, n int64
}

func (b *respBody) init(dir string) {
	b.data.init(dir)
	b.parts = b.inline[:0]
	b.size = 0
}

func (b *respBody) addData(p []byte) error {
	start := b.data.Len()
	if _, err := b.data.Write(p); err != nil {
		return err
	}
	if k := len(b.parts) - 1; k >= 0 && b.parts[k].file == nil {
		b.parts[k].n += int64(len(p))
	} else {
		b.parts = append(b.parts, part{off: start, n: int64(len(p))})
	}
	b.size += int64(len(p))
	return nil
}

// addFile takes ownership of f; count may be wire.ToEOF. The range is
// clamped to the file's size, so Content-Length never promises bytes that
// are not there.
func (b *respBody) addFile(f *os.File, off, count uint64) error {
	n, err := fileRange(f, off, count)
	if err != nil {
		f.Close()
		return err
	}
	b.parts = append(b.parts, part{file: f, off: int64(off), n: n})
	b.size += n
	return nil
}

func fileRange(f *os.File, off, count uint64) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat passed file: %w", err)
	}
	size := uint64(fi.Size())
	if off > size {
		return 0, nil
	}
	return int64(min(count, size-off)), nil
}

// writeTo sends the body to w.
func (b *respBody) writeTo(w io.Writer) error {
	for _, p := range b.parts {
		var err error
		if p.file == nil {
			err = b.data.WriteRange(w, p.off, p.n)
		} else {
			err = sendFile(w, p.file, p.off, p.n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *respBody) Close() {
	for _, p := range b.parts {
		if p.file != nil {
			p.file.Close()
		}
	}
	b.parts = nil
	b.data.Close()
}

// sendFile copies n bytes at off of f to w. It stays on *os.File (or an
// io.LimitedReader of one), the shape net/http turns into sendfile(2).
// The descriptor shares its offset with the app's file object, but the
// worker is done with it once it sent F.
func sendFile(w io.Writer, f *os.File, off, n int64) error {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	_, err := io.CopyN(w, f, n)
	return err
}
