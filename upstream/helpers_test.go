package upstream

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// testWait bounds every wait on a condition; generous, as -race on a
// loaded machine is slow, and never spent when the code works.
const testWait = 5 * time.Second

// testServer is a backend that answers with its name unless given a
// handler, and counts the requests it got.
type testServer struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

// newTestServer starts a backend on 127.0.0.1. A nil h writes the name
// in the body and an X-Server header.
func newTestServer(t testing.TB, name string, h http.HandlerFunc) *testServer {
	t.Helper()
	ts := &testServer{name: name}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		w.Header().Set("X-Server", name)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// servers starts n named backends (s0, s1, ...).
func servers(t testing.TB, n int) []*testServer {
	out := make([]*testServer, n)
	for i := range out {
		out[i] = newTestServer(t, "s"+string(rune('0'+i)), nil)
	}
	return out
}

func urls(ts ...*testServer) []Server {
	out := make([]Server, len(ts))
	for i, s := range ts {
		out[i] = Server{URL: s.URL}
	}
	return out
}

// newTestGroup builds a group and closes it with the test.
func newTestGroup(t testing.TB, cfg Config, log *zap.Logger) *Group {
	t.Helper()
	g, err := NewGroup(cfg, log)
	if err != nil {
		t.Fatalf("NewGroup: %v", err)
	}
	t.Cleanup(g.Close)
	return g
}

// newFront serves h on 127.0.0.1 the way the edge does: a status from
// Serve is written by the caller. Each returned status is sent on the
// channel (buffered; tests read it when they care).
func newFront(t testing.TB, h *Handler) (*httptest.Server, chan int) {
	t.Helper()
	statuses := make(chan int, 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := h.Serve(w, r)
		select {
		case statuses <- st:
		default:
		}
		if st != 0 {
			w.WriteHeader(st)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, statuses
}

// get fetches url and returns status, X-Server and body.
func get(t testing.TB, c *http.Client, url string, hdr http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s body: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("X-Server"), string(body)
}

// serveRec runs one request through h with a recorder, for tests that
// need a crafted RemoteAddr; the backend side is real.
func serveRec(h *Handler, r *http.Request) (*httptest.ResponseRecorder, int) {
	rec := httptest.NewRecorder()
	st := h.Serve(rec, r)
	return rec, st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// refusedURL is an http URL on which nothing listens.
func refusedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// observed is a logger whose entries the test can inspect.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}

// hasLog reports whether an entry with msg has a field key containing sub.
func hasLog(logs *observer.ObservedLogs, msg, key, sub string) bool {
	for _, e := range logs.FilterMessage(msg).All() {
		if v, ok := e.ContextMap()[key]; ok && strings.Contains(toString(v), sub) {
			return true
		}
	}
	return false
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

// serverStatus returns the status of the server with url.
func serverStatus(t testing.TB, g *Group, url string) ServerStatus {
	t.Helper()
	for _, s := range g.Status().Servers {
		if s.URL == url {
			return s
		}
	}
	t.Fatalf("no server %s in status", url)
	return ServerStatus{}
}

// shortTempDir is a temp dir with a short path: unix socket paths are
// limited to ~108 bytes and t.TempDir() can exceed that.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ups")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// unixServer serves h on a unix socket and returns its unix: URL.
func unixServer(t testing.TB, h http.Handler) string {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix:" + path
}
