package upstream

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-server/tandem/upstream/uwsgi"
)

// uwsgiEcho is a minimal uwsgi server: it answers with the body length
// it was told (CONTENT_LENGTH) and the bytes it then read.
func uwsgiEcho(t *testing.T) string {
	t.Helper()
	url := rawServer(t, func(c net.Conn) {
		var head [4]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return
		}
		vars := make([]byte, binary.LittleEndian.Uint16(head[1:3]))
		if _, err := io.ReadFull(c, vars); err != nil {
			return
		}
		env, err := uwsgi.ParseVars(vars)
		if err != nil {
			return
		}
		n, _ := strconv.Atoi(env["CONTENT_LENGTH"])
		body := make([]byte, n)
		io.ReadFull(c, body)
		reply := fmt.Sprintf("%d %s", n, body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(reply), reply)
	})
	return "uwsgi://" + strings.TrimPrefix(url, "http://")
}

// The uwsgi packet states the body's length up front, so a chunked body
// bound for a uwsgi server is spooled even with proxy_buffering off,
// instead of failing with 502.
func TestUwsgi_ChunkedBodyWithBufferingOff(t *testing.T) {
	g := newTestGroup(t, Config{Servers: []Server{{URL: uwsgiEcho(t)}}}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{Buffering: false}))
	// An io.Reader of unknown length makes the client send it chunked.
	body := io.MultiReader(strings.NewReader("chunked "), strings.NewReader("body"))
	resp, err := front.Client().Post(front.URL, "text/plain", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(got) != "12 chunked body" {
		t.Fatalf("got %d %q, want 200 \"12 chunked body\"", resp.StatusCode, got)
	}
}
