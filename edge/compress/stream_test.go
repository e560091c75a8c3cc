package compress

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// guard bounds a step that must finish: a failure, never a sleep.
const guard = 10 * time.Second

// rawClient never decompresses on its own, so tests see the wire bytes.
func rawClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true}}
}

func do(t *testing.T, url, ae string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	res, err := rawClient().Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	return res
}

// TestFlush_StreamsThroughEncoder: a handler that writes, flushes and then
// blocks has its bytes decoded by the client before it finishes — SSE
// works through compression — for every algorithm and both flush APIs.
func TestFlush_StreamsThroughEncoder(t *testing.T) {
	c := mustNew(t, Options{})
	for _, alg := range allAlgorithms {
		for _, viaController := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/controller=%v", alg, viaController), func(t *testing.T) {
				release := make(chan struct{})
				srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					flush := func() {
						if viaController {
							if err := http.NewResponseController(w).Flush(); err != nil {
								t.Errorf("Flush: %v", err)
							}
						} else {
							w.(http.Flusher).Flush()
						}
					}
					fmt.Fprint(w, "data: one\n\n")
					flush()
					select {
					case <-release:
					case <-r.Context().Done():
						return
					}
					fmt.Fprint(w, "data: two\n\n")
				})))
				defer srv.Close()
				defer func() {
					select {
					case <-release:
					default:
						close(release)
					}
				}()

				res := do(t, srv.URL, alg)
				defer res.Body.Close()
				if got := res.Header.Get("Content-Encoding"); got != alg {
					t.Fatalf("Content-Encoding = %q, want %q", got, alg)
				}
				dec := newDecoder(t, alg, res.Body)
				defer dec.Close()

				first := make(chan error, 1)
				buf := make([]byte, len("data: one\n\n"))
				go func() {
					_, err := io.ReadFull(dec, buf)
					first <- err
				}()
				select {
				case err := <-first:
					if err != nil || string(buf) != "data: one\n\n" {
						t.Fatalf("first event: %q, %v", buf, err)
					}
				case <-time.After(guard):
					t.Fatal("first event not decodable while the handler is blocked")
				}
				close(release)
				rest, err := io.ReadAll(dec)
				if err != nil || string(rest) != "data: two\n\n" {
					t.Fatalf("rest: %q, %v", rest, err)
				}
			})
		}
	}
}

// TestFlush_BeforeBody: a handler that flushes before writing (SSE
// handshake) gets its status line and headers out at once.
func TestFlush_BeforeBody(t *testing.T) {
	c := mustNew(t, Options{})
	release := make(chan struct{})
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})))
	defer srv.Close()
	got := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		res, err := rawClient().Do(req)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- res
	}()
	select {
	case res := <-got:
		if res != nil {
			if !hasToken(res.Header["Vary"], "Accept-Encoding") {
				t.Errorf("Vary = %q", res.Header["Vary"])
			}
			close(release)
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return
		}
	case <-time.After(guard):
		t.Error("headers not sent on Flush")
	}
	close(release)
}

// TestResponseController_ReachesConnection: deadlines and full duplex go
// through Unwrap to the real writer.
func TestResponseController_ReachesConnection(t *testing.T) {
	c := mustNew(t, Options{})
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline: %v", err)
		}
		if err := rc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetReadDeadline: %v", err)
		}
		if err := rc.EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(bytes.Repeat([]byte("x"), 4096))
	})))
	defer srv.Close()
	res := do(t, srv.URL, "gzip")
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.Header.Get("Content-Encoding") != "gzip" || len(decode(t, "gzip", b)) != 4096 {
		t.Error("response not compressed correctly")
	}
}

// TestHijack_PassesThrough: a handler that takes the connection writes
// raw bytes nobody touches, and the wrapper writes nothing after it.
func TestHijack_PassesThrough(t *testing.T) {
	c := mustNew(t, Options{})
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
		brw.Flush()
	})))
	defer srv.Close()
	res := do(t, srv.URL, "gzip")
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || string(b) != "hello" || res.Header.Get("Content-Encoding") != "" {
		t.Errorf("got %q (%v), Content-Encoding %q", b, err, res.Header.Get("Content-Encoding"))
	}
}

// TestUpgrade_101Untouched: an Upgrade request reaches the handler with
// the real writer; the 101 and the bytes after it pass untouched.
func TestUpgrade_101Untouched(t *testing.T) {
	c := mustNew(t, Options{})
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, wrapped := w.(*responseWriter); wrapped {
			t.Error("upgrade request got the compressing writer")
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString(line)
		brw.Flush()
	})))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(guard))
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Content-Encoding") != "" || res.Header.Get("Vary") != "" {
		t.Fatalf("status %d, headers %v", res.StatusCode, res.Header)
	}
	fmt.Fprint(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Errorf("echo: %q, %v", line, err)
	}
}

// TestInformational_103: 1xx responses other than 101 go out at once and
// the final response is still compressed.
func TestInformational_103(t *testing.T) {
	c := mustNew(t, Options{})
	page := htmlPage(4 << 10)
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/html")
		w.Write(page)
	})))
	defer srv.Close()
	var got1xx []int
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept-Encoding", "br")
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got1xx = append(got1xx, code)
			return nil
		},
	}))
	res, err := rawClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if len(got1xx) != 1 || got1xx[0] != http.StatusEarlyHints {
		t.Errorf("1xx responses: %v", got1xx)
	}
	if res.Header.Get("Content-Encoding") != "br" || !bytes.Equal(decode(t, "br", b), page) {
		t.Errorf("final response not compressed correctly (%q)", res.Header.Get("Content-Encoding"))
	}
}

// TestRealServer_Identity: over a real connection an uncompressed
// response of unknown length keeps net/http's own Content-Length.
func TestRealServer_Identity(t *testing.T) {
	c := mustNew(t, Options{})
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("<p>small</p>", 10)))
	})))
	defer srv.Close()
	res := do(t, srv.URL, "gzip")
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.ContentLength != int64(len(b)) || len(b) != 120 || res.Header.Get("Content-Encoding") != "" {
		t.Errorf("Content-Length %d, %d bytes, Content-Encoding %q", res.ContentLength, len(b), res.Header.Get("Content-Encoding"))
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
}
