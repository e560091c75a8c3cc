package appserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests pipeline a request behind a real worker's current one. The
// policy's limits are lifted (any app, any age) so that pipelining does
// not depend on timing; what is tested is what happens after.

type reply struct {
	code int
	body string
	err  error
	at   time.Time
}

// pipeHarness is one worker with pipelining always allowed once a request
// was timed.
func pipeHarness(t *testing.T, timeout time.Duration) (*harness, string) {
	app := testConf(writeApp(t, testApp), true, 1)
	app.Timeout = timeout
	h := startHarness(t, app)
	h.pool.a.mu.Lock()
	h.pool.a.pipeSlowApp, h.pool.a.pipeMaxAge = time.Hour, time.Hour
	h.pool.a.mu.Unlock()
	_, pid := h.get(t, "/pid") // times a request: pipelining may start
	return h, pid
}

// fetchAsync GETs path, or POSTs body to it when "POST " prefixes it.
func (h *harness) fetchAsync(ctx context.Context, path string) <-chan reply {
	ch := make(chan reply, 1)
	go func() {
		method, body := "GET", io.Reader(nil)
		if p, ok := strings.CutPrefix(path, "POST "); ok {
			method, path, body = "POST", p, strings.NewReader(pipeBody)
		}
		req, _ := http.NewRequestWithContext(ctx, method, h.srv.URL+path, body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- reply{err: err, at: time.Now()}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ch <- reply{code: resp.StatusCode, body: string(b), err: err, at: time.Now()}
	}()
	return ch
}

// inspect reports whether fn holds for a busy worker, under mu.
func (h *harness) inspect(fn func(w *worker) bool) bool {
	a := h.pool.a
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		if w.state == Busy && fn(w) {
			return true
		}
	}
	return false
}

// aheadAndBehind starts a request for ahead, waits until the worker has
// it, then a request for behind, and waits until it is pipelined.
func (h *harness) aheadAndBehind(t *testing.T, ctx context.Context, ahead, behind string) (a, b <-chan reply) {
	t.Helper()
	a = h.fetchAsync(context.Background(), ahead)
	waitFor(t, 5*time.Second, "request ahead written to the worker", func() bool {
		return h.inspect(func(w *worker) bool { return w.inflight == 1 && !w.sending.Load() })
	})
	b = h.fetchAsync(ctx, behind)
	waitFor(t, 5*time.Second, "request pipelined behind it", func() bool {
		return h.inspect(func(w *worker) bool { return w.behind != nil && !w.sending.Load() })
	})
	return a, b
}

func get(t *testing.T, ch <-chan reply, what string) reply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no response", what)
		return reply{}
	}
}

// TestPipelineReal_BothServedInOrder: the worker answers the request
// ahead, then the pipelined one, each on its own stream.
func TestPipelineReal_BothServedInOrder(t *testing.T) {
	h, pid := pipeHarness(t, 5*time.Second)
	start := time.Now()
	a, b := h.aheadAndBehind(t, context.Background(), "/sleep?0.3", "/pid")
	ra, rb := get(t, a, "ahead"), get(t, b, "behind")
	if ra.code != 200 || ra.body != "slept" || rb.code != 200 || rb.body != pid {
		t.Fatalf("ahead %d %q, behind %d %q (worker %s)", ra.code, ra.body, rb.code, rb.body, pid)
	}
	if d := rb.at.Sub(start); d < 300*time.Millisecond {
		t.Fatalf("pipelined request answered after %v, before the one ahead could end", d)
	}
	if s := h.pool.Stats(); s.Pipelined != 1 || s.Redispatched != 0 {
		t.Fatalf("pipelined %d, redispatched %d", s.Pipelined, s.Redispatched)
	}
}

// pipeBody is a request body small enough to be pipelined (≤ 16 KiB).
var pipeBody = strings.Repeat("pipelined body ", 1000)

// TestPipelineReal_WithBody: a small request body travels in the
// pipelined message, whole.
func TestPipelineReal_WithBody(t *testing.T) {
	h, _ := pipeHarness(t, 5*time.Second)
	a, b := h.aheadAndBehind(t, context.Background(), "/sleep?0.2", "POST /echo")
	ra, rb := get(t, a, "ahead"), get(t, b, "behind")
	if ra.code != 200 || rb.code != 200 || rb.body != pipeBody {
		t.Fatalf("ahead %d, behind %d with %d bytes (want %d)", ra.code, rb.code, len(rb.body), len(pipeBody))
	}
	if s := h.pool.Stats(); s.Pipelined != 1 {
		t.Fatalf("pipelined %d", s.Pipelined)
	}
}

// TestPipelineReal_BehindAStream: a streamed response ahead (the worker
// polls its socket for an abort between chunks while the next request
// waits in its queue) does not disturb either request.
func TestPipelineReal_BehindAStream(t *testing.T) {
	h, _ := pipeHarness(t, 5*time.Second)
	a, b := h.aheadAndBehind(t, context.Background(), "/stream", "/hello")
	ra, rb := get(t, a, "ahead"), get(t, b, "behind")
	if ra.code != 200 || ra.body != "chunk0\nchunk1\nchunk2\n" || rb.code != 200 || rb.body != "Hello, world!" {
		t.Fatalf("ahead %d %q %v, behind %d %q %v", ra.code, ra.body, ra.err, rb.code, rb.body, rb.err)
	}
}

// TestPipelineReal_WorkerFails: when the worker fails with a request
// pipelined behind the one it serves, and never read it, that request is
// served by another worker: only what the worker was serving fails.
func TestPipelineReal_WorkerFails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		ahead     string
		kill      bool   // kill -9 the worker once both requests are with it
		wantCode  int    // for the request ahead
		wantBody  string // "" = any
		wantWarns int    // "worker failed before reading a pipelined request"
	}{
		// Killed mid-request: the request behind is taken back at its turn.
		{"kill -9 ahead", 5 * time.Second, "/sleep?5", true, http.StatusBadGateway, "", 0},
		// Timed out: likewise.
		{"timeout ahead", 500 * time.Millisecond, "/sleep?5", false, http.StatusGatewayTimeout, "", 0},
		// Answers in full, then dies (in the body's close()) before it
		// reads the request behind, which has become current.
		{"dies after answering", 5 * time.Second, "/crash-after?0.3", false, http.StatusOK, "answered", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, pid := pipeHarness(t, tc.timeout)
			a, b := h.aheadAndBehind(t, context.Background(), tc.ahead, "/pid")
			if tc.kill {
				var victim int
				fmt.Sscan(pid, &victim)
				if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			ra, rb := get(t, a, "ahead"), get(t, b, "behind")
			if ra.code != tc.wantCode || (tc.wantBody != "" && ra.body != tc.wantBody) {
				t.Fatalf("request ahead: %d %q %v, want %d %q", ra.code, ra.body, ra.err, tc.wantCode, tc.wantBody)
			}
			if r := rb; r.code != 200 || r.body == pid || r.body == "" {
				t.Fatalf("pipelined request: %d %q %v, want 200 from a new worker (old %s)", r.code, r.body, r.err, pid)
			}
			if s := h.pool.Stats(); s.Redispatched != 1 {
				t.Fatalf("redispatched %d, want 1", s.Redispatched)
			}
			if n := h.logs.FilterMessage("worker failed before reading a pipelined request; sending it to another worker").Len(); n != tc.wantWarns {
				t.Fatalf("%d warnings about an unread request, want %d", n, tc.wantWarns)
			}
		})
	}
}

// TestPipelineReal_ClientBehindLeaves: the client of the pipelined request
// leaves before its turn; the request ahead is served, and the worker
// keeps serving afterwards.
func TestPipelineReal_ClientBehindLeaves(t *testing.T) {
	h, pid := pipeHarness(t, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	a, b := h.aheadAndBehind(t, ctx, "/sleep?0.3", "/sleep?0.3")
	cancel()
	if rb := get(t, b, "behind"); rb.err == nil {
		t.Fatalf("cancelled request got %d %q", rb.code, rb.body)
	}
	if ra := get(t, a, "ahead"); ra.code != 200 || ra.body != "slept" {
		t.Fatalf("ahead: %d %q %v", ra.code, ra.body, ra.err)
	}
	waitFor(t, 5*time.Second, "worker idle again", func() bool { return h.pool.Stats().Idle == 1 })
	if code, body := h.get(t, "/pid"); code != 200 || body != pid {
		t.Fatalf("after: %d %q, want 200 from the same worker %s", code, body, pid)
	}
	if n := h.logs.FilterMessage("worker protocol error").Len(); n != 0 {
		t.Fatalf("%d protocol errors logged", n)
	}
}
