package appserver

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/tandem-server/tandem/appserver/wire"
)

// TestReadResponse_SpoolFailureIsNeverAShortOK: a response without
// Content-Length is buffered while the worker sends faster than tandem
// reads; when buffering fails (a full disk, here a runtime dir that does
// not exist) the client must get a clean 502, never the head of a 200 with
// the part that fit, ended as if complete.
//
// The check that starts streaming runs when the reader has caught up with
// the worker. The bug it guards against: that check looked at the abort
// flag, which the failed write sets from a goroutine of its own, so when
// the reader caught up before that goroutine ran, the head and the
// buffered part went out and the response ended cleanly (TestApp_FullDisk
// saw a 200 with 5177344 of 20000000 bytes in CI). With one processor the
// goroutine cannot run in between, so the old code failed every time.
func TestReadResponse_SpoolFailureIsNeverAShortOK(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	x, _, peer := awaitRig(t)
	x.p.name, x.p.log = "fake", zap.NewNop()
	x.p.mgr = &Manager{runtimeDir: filepath.Join(t.TempDir(), "missing")}
	rec := httptest.NewRecorder()
	x.rw, x.r = rec, httptest.NewRequest(http.MethodGet, "/", nil)

	// S without Content-Length, then D frames one past the spool's memory
	// part, all in one write: the reader has them buffered, so nothing
	// streams until the frame that makes the spool go to disk and fail.
	// Z follows only once that has happened.
	head, err := wire.AppendResponseHead(nil, http.StatusOK, []wire.Pair{{Key: "Content-Type", Value: "text/plain"}})
	if err != nil {
		t.Fatal(err)
	}
	msg := wire.AppendFrame(nil, wire.Frame{Type: wire.Response, Stream: 7, Payload: head})
	chunk := bytes.Repeat([]byte("x"), wire.MaxChunk)
	for n := 0; n <= spoolMem; n += len(chunk) {
		msg = wire.AppendFrame(msg, wire.Frame{Type: wire.Data, Stream: 7, Payload: chunk})
	}
	sent := make(chan error, 1)
	go func() {
		if _, err := peer.Write(msg); err != nil {
			sent <- err
			return
		}
		// Z only once tandem has taken every byte off the socket: then
		// the failing frame is the last one its reader holds.
		for unread(t, x.wk.conn) > 0 {
			runtime.Gosched()
		}
		runtime.Gosched() // and let it get through those frames
		_, err := peer.Write(wire.AppendFrame(nil, wire.Frame{Type: wire.Done, Stream: 7}))
		sent <- err
	}()

	res := x.readResponse()
	if err := <-sent; err != nil {
		t.Fatalf("worker side: %v", err)
	}
	if x.streamed || rec.Body.Len() > 0 {
		t.Fatalf("the client got a head and %d bytes of a response that could not be buffered", rec.Body.Len())
	}
	if res.status != http.StatusBadGateway || res.buffered != nil {
		t.Fatalf("result: status %d, buffered %v; want a 502 and nothing buffered", res.status, res.buffered != nil)
	}
}

// unread is how many bytes wait in c's receive queue.
func unread(t *testing.T, c *net.UnixConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Error(err)
		return 0
	}
	n := 0
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		t.Errorf("SIOCINQ: %v %v", err, ierr)
		return 0
	}
	return n
}
