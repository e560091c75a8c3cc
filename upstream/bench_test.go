package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkProxyGet measures one 1 KiB GET: "direct" is client to
// server over loopback (the baseline), "proxied" adds the proxy hop
// (client, front server running Handler, server), and "handler" is
// Handler.Serve alone with a recorder in front (the proxy's own cost
// plus one loopback round trip to the server).
func BenchmarkProxyGet(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	}))
	defer up.Close()
	g, err := NewGroup(Config{Servers: []Server{{URL: up.URL}}, Keepalive: 32}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(HandlerOptions{Buffering: true})
	front := httptest.NewServer(h)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true}}
	defer client.CloseIdleConnections()

	fetch := func(b *testing.B, url string) {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != int64(len(payload)) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fetch(b, up.URL)
		}
	})
	b.Run("proxied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fetch(b, front.URL)
		}
	})
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
		for b.Loop() {
			rec := httptest.NewRecorder()
			if st := h.Serve(rec, req); st != 0 || rec.Body.Len() != len(payload) {
				b.Fatalf("status %d/%d, %d bytes", st, rec.Code, rec.Body.Len())
			}
		}
	})
}

// rawUpstream answers every request on a connection with a fixed
// 13-byte reply and closes it, as gunicorn's sync workers do, with as
// little work of its own as possible, so a benchmark sees the proxy.
func rawUpstream(tb testing.TB) string {
	reply := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!")
	return rawServer(tb, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		c.Write(reply)
	})
}

// BenchmarkProxyCloseEachConn is Handler.Serve against an upstream that
// closes every connection (gunicorn's sync workers): a dial per request.
func BenchmarkProxyCloseEachConn(b *testing.B) {
	g, err := NewGroup(Config{Servers: []Server{{URL: rawUpstream(b)}}, Keepalive: 32}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(HandlerOptions{Buffering: true})
	req := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
	req.Header.Set("User-Agent", "wrk")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		if st := h.Serve(rec, req); st != 0 || !strings.HasPrefix(rec.Body.String(), "Hello") {
			b.Fatalf("status %d/%d", st, rec.Code)
		}
	}
}
