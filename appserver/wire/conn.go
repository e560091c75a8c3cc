package wire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// DefaultBufSize fits a full D or B frame (64 KiB payload plus header) so a
// body chunk is read or written with one system call.
const DefaultBufSize = MaxChunk + HeaderLen + 4096

// maxFDs bounds the descriptors taken from one recvmsg: F frames carry one
// each, several may arrive in a single read.
const maxFDs = 16

// msgReader is the part of *net.UnixConn that can receive descriptors.
type msgReader interface {
	ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error)
}

// ErrFDLost is a control message truncated by the kernel: a descriptor was
// dropped, so F frames can no longer be matched with their files.
var ErrFDLost = errors.New("wire: file descriptor lost (MSG_CTRUNC)")

// Reader reads frames from a worker connection. With a *net.UnixConn it
// uses recvmsg for every read, because a plain read(2) would silently
// discard descriptors attached to an F frame; received descriptors queue in
// arrival order and TakeFile hands them out. It is not safe for concurrent
// use.
type Reader struct {
	src  io.Reader
	msg  msgReader
	buf  []byte
	r, w int
	oob  []byte
	fds  []int
}

// NewReader returns a reader with a buffer of size bytes (DefaultBufSize if
// size <= HeaderLen). Larger frames grow the buffer up to MaxPayload.
func NewReader(src io.Reader, size int) *Reader {
	if size <= HeaderLen {
		size = DefaultBufSize
	}
	rd := &Reader{src: src, buf: make([]byte, size)}
	if m, ok := src.(msgReader); ok {
		rd.msg = m
		rd.oob = make([]byte, syscall.CmsgSpace(maxFDs*4))
	}
	return rd
}

// ReadFrame returns the next frame. Its payload aliases the reader's buffer
// and is valid until the next call. A clean EOF between frames returns
// io.EOF; EOF inside a frame returns io.ErrUnexpectedEOF.
func (rd *Reader) ReadFrame() (Frame, error) {
	if err := rd.fill(HeaderLen); err != nil {
		if err == io.ErrUnexpectedEOF && rd.w == rd.r {
			err = io.EOF
		}
		return Frame{}, err
	}
	typ, stream, n, err := ParseHeader(rd.buf[rd.r:rd.w])
	if err != nil {
		return Frame{}, err
	}
	if err := rd.fill(HeaderLen + n); err != nil {
		return Frame{}, err
	}
	start := rd.r + HeaderLen
	rd.r = start + n
	return Frame{Type: typ, Stream: stream, Payload: rd.buf[start:rd.r:rd.r]}, nil
}

// Buffered reports bytes read from the connection but not yet returned.
func (rd *Reader) Buffered() int { return rd.w - rd.r }

// TakeFile returns the oldest received descriptor as a file, or false when
// none arrived (a protocol error for an F frame).
func (rd *Reader) TakeFile(name string) (*os.File, bool) {
	if len(rd.fds) == 0 {
		return nil, false
	}
	fd := rd.fds[0]
	rd.fds = rd.fds[1:]
	if len(rd.fds) == 0 {
		rd.fds = rd.fds[:0:0]
	}
	return os.NewFile(uintptr(fd), name), true
}

// Close closes descriptors that were received but never taken. It does not
// close the connection.
func (rd *Reader) Close() error {
	for _, fd := range rd.fds {
		syscall.Close(fd)
	}
	rd.fds = nil
	return nil
}

// fill ensures at least n unread bytes are buffered.
func (rd *Reader) fill(n int) error {
	if rd.w-rd.r >= n {
		return nil
	}
	if n > len(rd.buf) {
		nb := make([]byte, n)
		rd.w = copy(nb, rd.buf[rd.r:rd.w])
		rd.r, rd.buf = 0, nb
	} else if len(rd.buf)-rd.r < n {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	}
	for rd.w-rd.r < n {
		m, err := rd.read(rd.buf[rd.w:])
		rd.w += m
		if rd.w-rd.r >= n {
			return nil
		}
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if m == 0 {
			return io.ErrNoProgress
		}
	}
	return nil
}

func (rd *Reader) read(p []byte) (int, error) {
	if rd.msg == nil {
		return rd.src.Read(p)
	}
	n, oobn, flags, _, err := rd.msg.ReadMsgUnix(p, rd.oob)
	if oobn > 0 {
		if perr := rd.parseRights(rd.oob[:oobn]); perr != nil && err == nil {
			err = perr
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 && err == nil {
		err = ErrFDLost
	}
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

func (rd *Reader) parseRights(oob []byte) error {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("parse control message: %w", err)
	}
	for i := range msgs {
		fds, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			continue // not SCM_RIGHTS (e.g. credentials); nothing to close
		}
		rd.fds = append(rd.fds, fds...)
	}
	return nil
}

// Writer buffers frames for one connection. It is not safe for concurrent
// use. Frames are built in place: StartFrame, AppendVar…, EndFrame, so a
// request head costs no allocation.
type Writer struct {
	dst   io.Writer
	buf   []byte
	start int // offset of the open frame's header, or -1
	err   error
}

// NewWriter returns a writer with a buffer of size bytes.
func NewWriter(dst io.Writer, size int) *Writer {
	if size <= HeaderLen {
		size = DefaultBufSize
	}
	return &Writer{dst: dst, buf: make([]byte, 0, size), start: -1}
}

// WriteFrame buffers one frame, flushing first when it does not fit.
func (w *Writer) WriteFrame(typ byte, stream uint32, payload []byte) error {
	if len(payload) > MaxPayload {
		return ErrTooLarge
	}
	if len(w.buf)+HeaderLen+len(payload) > cap(w.buf) && len(w.buf) > 0 {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	w.buf = AppendHeader(w.buf, typ, stream, len(payload))
	w.buf = append(w.buf, payload...)
	return nil
}

// StartFrame opens a frame whose payload is appended with AppendVar or
// AppendRaw and closed by EndFrame.
func (w *Writer) StartFrame(typ byte, stream uint32) {
	w.start = len(w.buf)
	w.buf = AppendHeader(w.buf, typ, stream, 0)
	w.err = nil
}

// AppendVar appends a uwsgi var to the open frame. The first error sticks
// and is returned again by EndFrame.
func (w *Writer) AppendVar(key, value string) error {
	if w.err != nil {
		return w.err
	}
	w.buf, w.err = AppendVar(w.buf, key, value)
	return w.err
}

// AppendRaw appends bytes to the open frame.
func (w *Writer) AppendRaw(p []byte) { w.buf = append(w.buf, p...) }

// EndFrame closes the open frame by patching its length. On error the
// frame is dropped from the buffer.
func (w *Writer) EndFrame() error {
	start := w.start
	w.start = -1
	if start < 0 {
		return errors.New("wire: EndFrame without StartFrame")
	}
	n := len(w.buf) - start - HeaderLen
	if w.err == nil && n > MaxPayload {
		w.err = ErrTooLarge
	}
	if w.err != nil {
		w.buf = w.buf[:start]
		return w.err
	}
	h := w.buf[start+5 : start+9]
	h[0], h[1], h[2], h[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return nil
}

// Buffered reports bytes waiting for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// Flush writes the buffered frames.
func (w *Writer) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.dst.Write(w.buf)
	w.empty()
	return err
}

// Pending returns the buffered frames, for a caller that writes them
// itself (with a raw system call) and then calls Advance. The slice is
// valid until the next call on w.
func (w *Writer) Pending() []byte { return w.buf }

// Advance drops the first n buffered bytes, which the caller wrote.
func (w *Writer) Advance(n int) {
	if n >= len(w.buf) {
		w.empty()
		return
	}
	w.buf = w.buf[:copy(w.buf, w.buf[n:])]
}

func (w *Writer) empty() {
	if cap(w.buf) > 4*DefaultBufSize {
		w.buf = make([]byte, 0, DefaultBufSize) // a huge head grew it; give it back
	} else {
		w.buf = w.buf[:0]
	}
}

// Reset discards buffered data (after a write error the stream is broken
// anyway).
func (w *Writer) Reset() { w.buf, w.start, w.err = w.buf[:0], -1, nil }

// WriteFrameFD sends one frame with fd attached by SCM_RIGHTS in a single
// sendmsg, so the descriptor travels with the frame's first byte.
func WriteFrameFD(c *net.UnixConn, typ byte, stream uint32, payload []byte, fd int) error {
	b := AppendFrame(make([]byte, 0, HeaderLen+len(payload)), Frame{Type: typ, Stream: stream, Payload: payload})
	n, _, err := c.WriteMsgUnix(b, syscall.UnixRights(fd), nil)
	if err != nil {
		return err
	}
	if n < len(b) {
		// The descriptor went with the first byte; the rest is plain data.
		_, err = c.Write(b[n:])
	}
	return err
}

// AppendHeaderVar appends an HTTP request header to the open frame as its
// CGI environ entry: key "HTTP_" + name upper-cased with '-' → '_', value
// the header's values joined with sep. It allocates nothing.
func (w *Writer) AppendHeaderVar(name string, values []string, sep string) error {
	if w.err != nil {
		return w.err
	}
	klen := 5 + len(name)
	vlen := 0
	for i, v := range values {
		if i > 0 {
			vlen += len(sep)
		}
		vlen += len(v)
	}
	if klen > MaxVarLen || vlen > MaxVarLen {
		w.err = fmt.Errorf("header %.40q: %w", name, ErrVarTooLong)
		return w.err
	}
	w.buf = append(w.buf, byte(klen), byte(klen>>8), 'H', 'T', 'T', 'P', '_')
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		w.buf = append(w.buf, c)
	}
	w.buf = append(w.buf, byte(vlen), byte(vlen>>8))
	for i, v := range values {
		if i > 0 {
			w.buf = append(w.buf, sep...)
		}
		w.buf = append(w.buf, v...)
	}
	return nil
}

// ReadFrameFrom buffers one frame whose payload (at most max bytes) is
// read from src straight into the buffer, saving a copy for file-backed
// request bodies. It returns the payload size; 0 with io.EOF at the end.
func (w *Writer) ReadFrameFrom(typ byte, stream uint32, src io.Reader, max int) (int, error) {
	if len(w.buf)+HeaderLen+max > cap(w.buf) && len(w.buf) > 0 {
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	if cap(w.buf) < HeaderLen+max {
		w.buf = make([]byte, 0, HeaderLen+max)
	}
	start := len(w.buf)
	w.buf = AppendHeader(w.buf, typ, stream, 0)
	n, err := io.ReadFull(src, w.buf[start+HeaderLen:start+HeaderLen+max])
	if n == 0 {
		w.buf = w.buf[:start]
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return 0, err
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	w.buf = w.buf[:start+HeaderLen+n]
	h := w.buf[start+5 : start+9]
	h[0], h[1], h[2], h[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return n, err
}
