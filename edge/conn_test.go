package edge

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func acceptPair(t *testing.T, timeout time.Duration) (server net.Conn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := &edgeListener{Listener: ln, sendTimeout: timeout}
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// A client that stops reading is cut off after the idle send timeout
// instead of holding the connection forever.
func TestIdleSend_StalledClientTimesOut(t *testing.T) {
	server, _ := acceptPair(t, 200*time.Millisecond)
	buf := make([]byte, 1<<20)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 1000; i++ { // far more than the socket buffers hold
			if _, err := server.Write(buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("write to a stalled client ended with %v, want a timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("write to a stalled client never timed out")
	}
}

// ReadFrom moves a file larger than one sendfile chunk completely, both
// bare and under an io.LimitedReader, so net/http's sendfile path works.
func TestIdleSend_ReadFromMovesWholeFile(t *testing.T) {
	const size = 2*sendfileChunk + 12345
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, limited := range []bool{false, true} {
		server, client := acceptPair(t, 5*time.Second)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan int64, 1)
		go func() {
			n, _ := io.Copy(io.Discard, client)
			got <- n
		}()
		var src io.Reader = f
		want := int64(size)
		if limited {
			want = size - 100
			src = &io.LimitedReader{R: f, N: want}
		}
		n, err := server.(io.ReaderFrom).ReadFrom(src)
		f.Close()
		server.Close()
		if err != nil || n != want {
			t.Fatalf("limited=%v: ReadFrom moved %d, err %v; want %d", limited, n, err, want)
		}
		if r := <-got; r != want {
			t.Fatalf("limited=%v: client received %d bytes, want %d", limited, r, want)
		}
	}
}

// A read deadline moved later is honoured in full, though the earlier
// timer stays armed until it fires.
func TestEdgeConn_LaterReadDeadlineIsHonoured(t *testing.T) {
	server, _ := acceptPair(t, 0)
	start := time.Now()
	_ = server.SetReadDeadline(start.Add(50 * time.Millisecond))
	_ = server.SetReadDeadline(start.Add(400 * time.Millisecond))
	_, err := server.Read(make([]byte, 1))
	waited := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read ended with %v, want a deadline error", err)
	}
	if waited < 400*time.Millisecond {
		t.Fatalf("read timed out after %v; the deadline was moved to 400ms", waited)
	}
}

// A cleared read deadline means no timeout, even after an earlier one was
// armed; data that arrives later is read.
func TestEdgeConn_ClearedReadDeadlineWaits(t *testing.T) {
	server, client := acceptPair(t, 0)
	_ = server.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_ = server.SetReadDeadline(time.Time{})
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 1)
		_, err := server.Read(buf)
		got <- err
	}()
	// Write only well after the early deadline: the read must still be
	// waiting all that time.
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case err := <-got:
			t.Fatalf("read returned %v before any data; the deadline was cleared", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("read with a cleared deadline failed: %v", err)
	}
}

// An earlier deadline (net/http's "abort pending read") takes effect at
// once.
func TestEdgeConn_EarlierReadDeadlineInterrupts(t *testing.T) {
	server, _ := acceptPair(t, 0)
	_ = server.SetReadDeadline(time.Now().Add(time.Hour))
	got := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 1))
		got <- err
	}()
	_ = server.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-got:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("interrupted read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a deadline in the past did not interrupt the read")
	}
}

// After net/http aborts its background read (a deadline in the past) and a
// handler hijacks the connection and clears the deadline, copying from the
// connection (a WebSocket tunnel) must read data, not fail with a timeout.
func TestHijackedConn_CopyAfterAbortedRead(t *testing.T) {
	server, client := acceptPair(t, time.Minute)
	if err := server.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := server.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("frame")); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).CloseWrite()
	var got bytesSink
	n, err := server.(io.WriterTo).WriteTo(&got)
	if err != nil || string(got) != "frame" {
		t.Fatalf("copied %d bytes %q, err %v; want \"frame\"", n, got, err)
	}
}

type bytesSink []byte

func (b *bytesSink) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
