package appserver

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestServe_MaxRequestsRecycles: with max_requests 5 (no jitter) the
// worker is replaced after its fifth request, logged as max_requests.
func TestServe_MaxRequestsRecycles(t *testing.T) {
	app := testConf(writeApp(t, testApp), true, 1)
	app.MaxRequests = 5
	h := startHarness(t, app)
	_, first := h.get(t, "/pid")
	for i := 0; i < 4; i++ {
		if _, pid := h.get(t, "/pid"); pid != first {
			t.Fatalf("worker replaced after %d requests", i+1)
		}
	}
	waitFor(t, 5*time.Second, "replacement after 5 requests", func() bool {
		code, pid := h.get(t, "/pid")
		return code == 200 && pid != first
	})
	if n := h.logs.FilterMessage("worker exited").FilterField(zap.Stringer("reason", MaxRequests)).Len(); n != 1 {
		t.Fatalf("%d max_requests exits logged", n)
	}
}

// TestServe_QueueFull503: with one worker busy and the queue full or timed
// out, requests get 503 with Retry-After instead of waiting forever.
func TestServe_QueueFull503(t *testing.T) {
	app := testConf(writeApp(t, testApp), true, 1)
	app.Queue, app.QueueTimeout = 1, 300*time.Millisecond
	h := startHarness(t, app)
	var wg sync.WaitGroup
	codes := make(chan *http.Response, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(h.srv.URL + "/sleep?1")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp
		}()
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	close(codes)
	n503 := 0
	for resp := range codes {
		if resp.StatusCode == http.StatusServiceUnavailable {
			n503++
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		}
	}
	if n503 != 2 {
		t.Fatalf("%d× 503, want 2 (one over the queue size, one past the queue timeout)", n503)
	}
}

// TestServe_ClientGoneMidStream: a client that disconnects during a
// streamed response makes tandem send A; the worker stops the app and is
// idle again without being killed.
func TestServe_ClientGoneMidStream(t *testing.T) {
	h := startHarness(t, testConf(writeApp(t, testApp), true, 1))
	_, pid := h.get(t, "/pid")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	resp.Body.Read(buf)
	cancel()
	resp.Body.Close()
	waitFor(t, 2*time.Second, "worker idle again", func() bool { return h.pool.Stats().Idle == 1 })
	if _, again := h.get(t, "/pid"); again != pid {
		t.Fatalf("worker replaced (%s → %s); it should have been reused", pid, again)
	}
	if n := h.logs.FilterMessage("worker exited").Len(); n != 0 {
		t.Fatalf("%d worker exits", n)
	}
}

// TestShutdown_LetsInFlightFinish: Shutdown stops dispatch, waits for the
// request in flight, and returns with every process reaped.
func TestShutdown_LetsInFlightFinish(t *testing.T) {
	h := startHarness(t, testConf(writeApp(t, testApp), true, 2))
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(h.srv.URL + "/sleep?0.5")
		if err != nil {
			done <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitFor(t, 2*time.Second, "request in flight", func() bool { return h.pool.Stats().Busy == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 200 {
		t.Fatalf("in-flight request got %d", code)
	}
	if code, _ := h.get(t, "/hello"); code != http.StatusServiceUnavailable {
		t.Fatalf("after shutdown: %d, want 503", code)
	}
	if n := h.logs.FilterMessage("worker exited").FilterField(zap.Stringer("reason", Shutdown)).Len(); n != 2 {
		t.Fatalf("%d shutdown exits logged, want 2", n)
	}
}
