package appserver

import (
	"errors"
	"os"
	"syscall"

	"github.com/tandem-server/tandem/appserver/wire"
)

// Writing a request and waiting for its answer in one step.
//
// Written the ordinary way (conn.Write, then conn.ReadMsgUnix), every
// request costs a recvmsg that fails with EAGAIN: the worker has not
// answered yet a microsecond after the write, so the read parks in the
// poller and tries again when the answer arrives. sendAndAwait instead
// writes from inside RawConn.Read: the poller is reset (armed) before the
// callback runs, so an answer that arrives any time after the write wakes
// it, and the read that follows (readResponse) finds the answer already
// there. Deadlines apply to the wait as to any read, so `timeout` still
// ends it with os.ErrDeadlineExceeded.

// sendInline writes what bufferBody left in the writer and waits for the
// answer; with a body written by its own goroutine (!inline) there is
// nothing to do.
func (x *exchange) sendInline(inline bool) error {
	if !inline {
		return nil
	}
	return x.sendAndAwait()
}

// sendAndAwait writes the buffered request (H, a small body, E) and waits
// until the worker's connection is readable. It sets bodyDone once every
// byte is written, under wmu, so abort's A frame never lands inside the
// request; an abort that came first is sent with it.
func (x *exchange) sendAndAwait() error {
	wk := x.wk
	if wk.snd == nil {
		raw, err := wk.conn.SyscallConn()
		if err != nil {
			return err
		}
		wk.snd = &sender{raw: raw}
		wk.snd.step = wk.snd.call // one func value per worker, not per request
	}
	s := wk.snd
	s.x, s.called, s.rest, s.queuedA, s.err = x, false, false, false, nil
	rerr := s.raw.Read(s.step)
	s.x = nil
	switch {
	case s.err != nil:
		wk.wr.Reset()
		return s.err
	case s.rest:
		return x.finishSend(s.queuedA)
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		return rerr
	}
	// Any other wait error (say, a closed connection) is found again,
	// and classified, by the read that follows.
	return nil
}

// sender is sendAndAwait's RawConn.Read callback and its state, kept per
// worker (request-goroutine side) so a request allocates none of it.
type sender struct {
	raw  syscall.RawConn
	step func(fd uintptr) bool // call, bound once

	x       *exchange // the request being sent; nil between requests
	called  bool      // the write was attempted
	rest    bool      // the socket was full: finishSend writes the rest
	queuedA bool      // an abort came first; A went out with the request
	err     error     // the write failed
}

// call writes the request on the first call and asks to wait (false);
// any later call means the connection became readable.
func (s *sender) call(fd uintptr) bool {
	if s.called {
		return true // readable (or a spurious wake-up: readResponse waits again)
	}
	s.called = true
	x := s.x
	wr := x.wk.wr
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if x.aborted.Load() {
		wr.WriteFrame(wire.Abort, x.stream, nil)
		s.queuedA = true
	}
	n, err := writeFD(int(fd), wr.Pending())
	wr.Advance(n)
	switch {
	case err == syscall.EAGAIN:
		s.rest = true // finish below, blocking
		return true
	case err != nil:
		s.err = os.NewSyscallError("write", err)
		return true
	}
	x.bodyDone = true
	x.sent()
	return false // wait for the answer
}

// finishSend writes what the socket did not take at once, through the
// connection (blocking, with the deadline), then an abort that came in
// meanwhile (queuedA: one came before and is in the buffer already).
func (x *exchange) finishSend(queuedA bool) error {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	wr := x.wk.wr
	if err := wr.Flush(); err != nil {
		wr.Reset()
		return err
	}
	x.bodyDone = true
	if !queuedA && x.aborted.Load() {
		// abort ran while the write was unfinished and left A to us.
		wr.WriteFrame(wire.Abort, x.stream, nil)
		if err := wr.Flush(); err != nil {
			return err
		}
	}
	x.sent()
	return nil
}

// writeFD writes p to the non-blocking descriptor fd until it is all
// written, the socket is full (EAGAIN) or an error occurs.
func writeFD(fd int, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := syscall.Write(fd, p[n:])
		if m > 0 {
			n += m
		}
		switch {
		case err == syscall.EINTR:
		case err != nil:
			return n, err
		case m == 0:
			return n, syscall.EAGAIN
		}
	}
	return n, nil
}
