package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load is a bounded keep-alive load on one URL: clients goroutines, each
// sending at most perClient requests, until stop or the count runs out.
// A request fails on a transport error or when accept rejects the
// response.
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value // string
	stopc      chan struct{}
	wg         sync.WaitGroup
}

func startLoad(url string, clients, perClient int, accept func(status int, body string) bool) *load {
	l := &load{stopc: make(chan struct{})}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := client()
			for n := 0; n < perClient; n++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				resp, err := c.Get(url)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					l.fail("read body: " + err.Error())
				case !accept(resp.StatusCode, string(b)):
					l.fail(fmt.Sprintf("status %d body %.100q", resp.StatusCode, b))
				default:
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.firstErr.CompareAndSwap(nil, msg)
}

// stop ends the load and waits for its clients.
func (l *load) stop() {
	close(l.stopc)
	l.wg.Wait()
}

// waitOK waits until n more requests than now have succeeded.
func (l *load) waitOK(t *testing.T, n int64, d time.Duration) {
	t.Helper()
	waitCount(t, &l.ok, l.ok.Load()+n, d)
}

// report is "N ok, M failed (first: ...)".
func (l *load) report() string {
	return fmt.Sprintf("%d ok, %d failed (first: %v)", l.ok.Load(), l.failed.Load(), l.firstErr.Load())
}

func waitCount(t *testing.T, n *atomic.Int64, want int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for n.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("count stuck at %d, want %d", n.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
