package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-server/tandem/upstream/internal/nettest"
)

// rawServer accepts TCP connections on 127.0.0.1 and hands each to fn.
func rawServer(t testing.TB, fn func(net.Conn)) string {
	return "http://" + nettest.Serve(t, fn)
}

// readHead reads a request head from c.
func readHead(c net.Conn) {
	http.ReadRequest(bufio.NewReader(c))
}

// resetServer reads the request, then resets the connection: the
// request reached the server, which may have acted on it.
func resetServer(t *testing.T, got *atomic.Int64) string {
	return rawServer(t, func(c net.Conn) {
		readHead(c)
		got.Add(1)
		c.(*net.TCPConn).SetLinger(0)
	})
}

// echoBody answers with the request's method and body.
func echoBody(t *testing.T, name string) *testServer {
	return newTestServer(t, name, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write([]byte(r.Method + " " + string(b)))
	})
}

func do(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A request that never reached a server is retried on another, whatever
// its method and body mode: nothing was sent.
func TestRetry_ConnectRefusedAnyMethod(t *testing.T) {
	good := echoBody(t, "good")
	for _, buffering := range []bool{true, false} {
		log, logs := observed()
		g := newTestGroup(t, Config{Servers: []Server{{URL: refusedURL(t)}, {URL: good.URL}}}, log)
		front, _ := newFront(t, g.Handler(HandlerOptions{Buffering: buffering}))
		for _, method := range []string{"GET", "POST"} {
			n := logs.FilterMessage("upstream attempt failed, retrying on another server").Len()
			for i := range 4 {
				body := ""
				if method == "POST" {
					body = strings.Repeat("x", i*1000+1)
				}
				st, got := do(t, front.Client(), method, front.URL, body)
				if st != 200 || got != method+" "+body {
					t.Fatalf("buffering=%v %s: %d %.40q", buffering, method, st, got)
				}
			}
			if logs.FilterMessage("upstream attempt failed, retrying on another server").Len() == n {
				t.Fatalf("buffering=%v %s: the refusing server was never tried", buffering, method)
			}
		}
	}
}

// retry_status retries idempotent requests only; a POST that got the
// status keeps it, and reached exactly one server.
func TestRetry_StatusOnlyIdempotent(t *testing.T) {
	var aPosts, bPosts atomic.Int64
	a := newTestServer(t, "a", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == "POST" {
			aPosts.Add(1)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	b := newTestServer(t, "b", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == "POST" {
			bPosts.Add(1)
		}
		w.Write([]byte(r.Method + " " + string(body)))
	})
	g := newTestGroup(t, Config{Servers: urls(a, b), RetryStatus: []int{503}}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{Buffering: true}))
	c := front.Client()
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		for range 4 {
			if st, body := do(t, c, m, front.URL, "data"); st != 200 || body != m+" data" {
				t.Fatalf("%s: %d %q, want retried to b", m, st, body)
			}
		}
	}
	codes := map[int]int{}
	for range 4 {
		st, _ := do(t, c, "POST", front.URL, "data")
		codes[st]++
	}
	if codes[503] == 0 || codes[200] == 0 || codes[503]+codes[200] != 4 {
		t.Fatalf("POST statuses %v: want some 503 kept, some 200", codes)
	}
	if aPosts.Load()+bPosts.Load() != 4 {
		t.Fatalf("POSTs reached %d+%d servers, want 4 in all (never retried)", aPosts.Load(), bPosts.Load())
	}

	// A streamed body cannot be sent twice: an idempotent PUT keeps its
	// 503 too; a GET without a body is still retried.
	gs := newTestGroup(t, Config{Servers: urls(a, b), RetryStatus: []int{503}}, nil)
	fs, _ := newFront(t, gs.Handler(HandlerOptions{Buffering: false}))
	puts := map[int]int{}
	for range 4 {
		st, _ := do(t, fs.Client(), "PUT", fs.URL, "data")
		puts[st]++
		if st, _ := do(t, fs.Client(), "GET", fs.URL, ""); st != 200 {
			t.Fatalf("streaming GET: %d", st)
		}
	}
	if puts[503] == 0 {
		t.Fatalf("streamed PUT was retried: %v", puts)
	}

	// Nobody left to ask: the status is the answer.
	g1 := newTestGroup(t, Config{Servers: urls(a), RetryStatus: []int{503}}, nil)
	f1, _ := newFront(t, g1.Handler(HandlerOptions{}))
	if st, _ := do(t, f1.Client(), "GET", f1.URL, ""); st != 503 {
		t.Fatalf("single server: %d, want its 503", st)
	}
}

// A POST that reached a server is never retried, even when the server
// then failed (here: reset the connection).
func TestRetry_PostNotRetriedAfterSent(t *testing.T) {
	var resets atomic.Int64
	bad := resetServer(t, &resets)
	good := echoBody(t, "good")
	g := newTestGroup(t, Config{Servers: []Server{{URL: bad}, {URL: good.URL}}}, nil)
	front, _ := newFront(t, g.Handler(HandlerOptions{Buffering: true}))
	codes := map[int]int{}
	for range 4 {
		st, _ := do(t, front.Client(), "POST", front.URL, "once")
		codes[st]++
	}
	if codes[502] != int(resets.Load()) || codes[502] == 0 || codes[200] != 4-codes[502] {
		t.Fatalf("statuses %v with %d resets: each reset POST must fail with 502, not be retried", codes, resets.Load())
	}
	if good.hits.Load() != int64(codes[200]) {
		t.Fatalf("good server got %d POSTs, want %d", good.hits.Load(), codes[200])
	}
}

// Error statuses: 502 when the server refused, reset or spoke garbage;
// 504 when it did not answer in first_byte_timeout. The cause and server
// are logged at error level.
func TestErrorStatus_502vs504(t *testing.T) {
	var resets atomic.Int64
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	slow := newTestServer(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	})
	garbage := rawServer(t, func(c net.Conn) {
		readHead(c)
		io.WriteString(c, "HELLO THERE\r\n\r\n")
	})
	for _, tc := range []struct {
		name, url string
		want      int
		cause     string
	}{
		{"refused", refusedURL(t), 502, "connection refused"},
		{"reset", resetServer(t, &resets), 502, ""},
		{"garbage", garbage, 502, "malformed"},
		{"first byte timeout", slow.URL, 504, "timeout awaiting response headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := observed()
			g := newTestGroup(t, Config{Servers: []Server{{URL: tc.url}}, FirstByteTimeout: 100 * time.Millisecond}, log)
			front, statuses := newFront(t, g.Handler(HandlerOptions{}))
			st, body := do(t, front.Client(), "GET", front.URL, "")
			if st != tc.want {
				t.Fatalf("status %d, want %d", st, tc.want)
			}
			if <-statuses != tc.want || body != "" {
				t.Fatalf("Serve must return the status and write nothing (body %q)", body)
			}
			entries := logs.FilterMessage("upstream request failed").All()
			if len(entries) != 1 || entries[0].Level.String() != "error" {
				t.Fatalf("want one error log, got %v", logs.All())
			}
			f := entries[0].ContextMap()
			if f["server"] != tc.url || !strings.Contains(f["cause"].(string), tc.cause) {
				t.Fatalf("log fields %v", f)
			}
		})
	}
}

// The client going away cancels the upstream request, and Serve reports
// 499.
func TestClientCancel_Propagates(t *testing.T) {
	gotReq := make(chan struct{})
	canceled := make(chan struct{})
	s := newTestServer(t, "s", func(w http.ResponseWriter, r *http.Request) {
		close(gotReq)
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(testWait):
		}
	})
	g := newTestGroup(t, Config{Servers: urls(s)}, nil)
	front, statuses := newFront(t, g.Handler(HandlerOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := front.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-gotReq
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("request succeeded after cancel")
	}
	select {
	case <-canceled:
	case <-time.After(testWait):
		t.Fatal("upstream request not canceled")
	}
	select {
	case st := <-statuses:
		if st != StatusClientGone {
			t.Fatalf("Serve returned %d, want 499", st)
		}
	case <-time.After(testWait):
		t.Fatal("Serve did not return")
	}
}
