package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandem-server/tandem/static"
)

// TestEdgeConn_SendSectionSharesDescriptor: two connections send
// different sections of one open file at once, several sendfile chunks
// long, and each receives exactly its bytes; the file's own offset never
// moves, which is what lets the static cache share one descriptor.
func TestEdgeConn_SendSectionSharesDescriptor(t *testing.T) {
	const size = 3*sendfileChunk + 777
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i * 7 / 3)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections := [][2]int64{{0, size}, {12345, 2*sendfileChunk + 1}}
	var wg sync.WaitGroup
	for _, sec := range sections {
		server, client := acceptPair(t, 5*time.Second)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sr := io.NewSectionReader(f, sec[0], sec[1])
			// Read a little first, as net/http's sniffing copy does.
			head := make([]byte, 512)
			if _, err := io.ReadFull(sr, head); err != nil {
				t.Error(err)
				return
			}
			if _, err := server.Write(head); err != nil {
				t.Error(err)
				return
			}
			n, err := server.(io.ReaderFrom).ReadFrom(sr)
			server.Close()
			if err != nil || n != sec[1]-512 {
				t.Errorf("section %v: ReadFrom moved %d, %v", sec, n, err)
			}
			if pos, _ := sr.Seek(0, io.SeekCurrent); pos != sec[1] {
				t.Errorf("section %v: reader left at %d, want its end", sec, pos)
			}
			if b := <-got; !bytes.Equal(b, content[sec[0]:sec[0]+sec[1]]) {
				t.Errorf("section %v: client got %d bytes, not the section", sec, len(b))
			}
		}()
	}
	wg.Wait()
	if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 0 {
		t.Errorf("file offset moved to %d (%v)", off, err)
	}
}

// unsent is how many bytes sit in c's send queue not yet sent.
func unsent(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	if err := rc.Control(func(fd uintptr) { n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD) }); err != nil {
		t.Fatal(err)
	}
	if ioErr != nil {
		t.Fatal(ioErr)
	}
	return n
}

// TestEdgeConn_MoreFollowsHoldsThenPushes: a write after MoreFollows is
// held in the socket (that is the point: it leaves with what follows),
// and the end of the response — net/http clearing the write deadline —
// pushes it out even when nothing followed.
func TestEdgeConn_MoreFollowsHoldsThenPushes(t *testing.T) {
	server, client := acceptPair(t, 5*time.Second)
	ec := server.(*edgeConn)
	ec.MoreFollows()
	if _, err := ec.Write([]byte("head")); err != nil {
		t.Fatal(err)
	}
	if n := unsent(t, ec.TCPConn); n != 4 {
		t.Fatalf("unsent after a held write = %d, want 4", n)
	}
	if err := ec.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := unsent(t, ec.TCPConn); n != 0 {
		t.Fatalf("unsent after the end of the response = %d, want 0", n)
	}
	buf := make([]byte, 4)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "head" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	// The hint covers one write: the next one is sent at once.
	if _, err := ec.Write([]byte("body")); err != nil {
		t.Fatal(err)
	}
	if n := unsent(t, ec.TCPConn); n != 0 {
		t.Fatalf("unsent after a plain write = %d, want 0", n)
	}
}

// TestStatic_NothingHeldBetweenResponses serves files on both sides of
// every threshold the hint uses (the in-memory size, net/http's 4 KiB
// buffer, the 512-byte sniff before sendfile) on one keep-alive
// connection, and checks at each response's end (the connection going
// idle) that no byte is left held in the socket: a held tail would wait
// for the next response, or for 200 ms.
func TestStatic_NothingHeldBetweenResponses(t *testing.T) {
	root := t.TempDir()
	sizes := []int{100, 3000, 3583, 3585, 3800, 4096, 4097, 8192, 100 << 10, 300 << 10}
	for _, n := range sizes {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprint(n)), bytes.Repeat([]byte{'x'}, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fh, err := static.New(static.Options{Root: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []string
	var current string // the path being answered; the hook runs after its handler
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			current = r.URL.Path
			mu.Unlock()
			fh.ServeHTTP(w, r)
		}),
		ConnContext: connContext,
		ConnState: func(c net.Conn, st http.ConnState) {
			ec, ok := c.(*edgeConn)
			if !ok || st != http.StateIdle {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ec.held.Load() {
				held = append(held, current+": marked held")
			}
			// Large responses may still queue for the client's window;
			// small ones have no reason to stay unsent.
			var size int
			fmt.Sscanf(current, "/%d", &size)
			if n := unsent(t, ec.TCPConn); n != 0 && size <= 8192 {
				held = append(held, fmt.Sprintf("%s: %d bytes unsent", current, n))
			}
		},
	}
	go srv.Serve(&edgeListener{Listener: ln, sendTimeout: sendIdleTimeout})
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for round := range 2 { // the second round comes from the cache
		for _, n := range sizes {
			fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: t\r\n\r\n", n)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d, %d bytes: %v", round, n, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || len(b) != n {
				t.Fatalf("round %d, %d bytes: status %d, got %d bytes, %v", round, n, resp.StatusCode, len(b), err)
			}
		}
	}
	// The last response's idle hook may still be running; a request on a
	// fresh connection cannot overtake it on this one, but shutting the
	// server down waits for hooks to return.
	srv.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(held) > 0 {
		t.Errorf("bytes left held at the end of a response: %v", held)
	}
}
