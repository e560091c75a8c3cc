package appserver

import (
	"bytes"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/appserver/wire"
)

// awaitRig is one exchange over a socketpair whose far end the test plays
// as the worker.
func awaitRig(t *testing.T) (*exchange, *wire.Reader, *net.UnixConn) {
	t.Helper()
	ours, theirs, err := socketpair()
	if err != nil {
		t.Fatal(err)
	}
	fc, err := net.FileConn(theirs)
	theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	peer := fc.(*net.UnixConn)
	t.Cleanup(func() { ours.Close(); peer.Close() })
	w := &worker{conn: ours, rd: wire.NewReader(ours, 0), wr: wire.NewWriter(ours, 0)}
	p := &Pool{a: newArbiter("fake", zap.NewNop(), nil)} // nothing queued: sent pipelines nothing
	return &exchange{p: p, wk: w, stream: 7}, wire.NewReader(peer, 0), peer
}

// TestSendAndAwait_WritesThenWaitsForAnswer: the request arrives whole,
// sendAndAwait returns only once the answer is readable, and the read
// that follows gets it.
func TestSendAndAwait_WritesThenWaitsForAnswer(t *testing.T) {
	x, peerRd, peer := awaitRig(t)
	x.wk.conn.SetDeadline(time.Now().Add(5 * time.Second))
	x.wk.wr.WriteFrame(wire.Head, 7, []byte("head"))
	x.wk.wr.WriteFrame(wire.End, 7, nil)
	answered := make(chan struct{})
	go func() {
		for _, typ := range []byte{wire.Head, wire.End} {
			f, err := peerRd.ReadFrame()
			if err != nil || f.Type != typ || f.Stream != 7 {
				t.Errorf("worker read %+v, %v; want %c", f, err, typ)
			}
		}
		time.Sleep(20 * time.Millisecond) // the app runs
		close(answered)
		peer.Write(wire.AppendFrame(nil, wire.Frame{Type: wire.Done, Stream: 7}))
	}()
	if err := x.sendAndAwait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	default:
		t.Fatal("sendAndAwait returned before the worker answered")
	}
	if !x.bodyDone {
		t.Fatal("bodyDone not set after the request was written")
	}
	if f, err := x.wk.rd.ReadFrame(); err != nil || f.Type != wire.Done {
		t.Fatalf("answer: %+v, %v", f, err)
	}
}

// TestSendAndAwait_Deadline: a worker that never answers ends the wait at
// the request's deadline, classified as a timeout (504).
func TestSendAndAwait_Deadline(t *testing.T) {
	x, _, _ := awaitRig(t)
	x.wk.conn.SetDeadline(time.Now().Add(50 * time.Millisecond))
	x.wk.wr.WriteFrame(wire.End, 7, nil)
	err := x.sendAndAwait()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("no answer: %v, want the deadline", err)
	}
}

// TestSendAndAwait_FullSocketFinishesBlocking: a request larger than the
// socket takes at once is finished by a blocking write, and an abort that
// came first follows it (after E, never inside the request).
func TestSendAndAwait_FullSocketFinishesBlocking(t *testing.T) {
	x, peerRd, peer := awaitRig(t)
	raw, err := x.wk.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
	})
	x.wk.conn.SetDeadline(time.Now().Add(5 * time.Second))
	body := bytes.Repeat([]byte("b"), wire.MaxChunk)
	x.wk.wr.WriteFrame(wire.Body, 7, body)
	x.wk.wr.WriteFrame(wire.End, 7, nil)
	x.aborted.Store(true) // the client left before the request was written
	done := make(chan error, 1)
	go func() { done <- x.sendAndAwait() }()
	time.Sleep(20 * time.Millisecond) // let the socket fill up
	var got []byte
	for _, typ := range []byte{wire.Body, wire.End, wire.Abort} {
		f, err := peerRd.ReadFrame()
		if err != nil || f.Type != typ {
			t.Fatalf("worker read %c, %v; want %c", f.Type, err, typ)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("body arrived with %d bytes, want %d", len(got), len(body))
	}
	peer.Write(wire.AppendFrame(nil, wire.Frame{Type: wire.Done, Stream: 7}))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f, err := x.wk.rd.ReadFrame(); err != nil || f.Type != wire.Done {
		t.Fatalf("answer: %+v, %v", f, err)
	}
}

// TestSendAndAwait_BrokenWorker: a worker that is gone fails the write
// with an error Serve classifies as a crash (502), not a protocol error.
func TestSendAndAwait_BrokenWorker(t *testing.T) {
	x, _, peer := awaitRig(t)
	peer.Close()
	x.wk.conn.SetDeadline(time.Now().Add(5 * time.Second))
	x.wk.wr.WriteFrame(wire.End, 7, nil)
	err := x.sendAndAwait()
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write to a closed worker: %v, want EPIPE", err)
	}
}
