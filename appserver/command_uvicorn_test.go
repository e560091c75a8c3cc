package appserver

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const testUvicorn = "/usr/bin/uvicorn"

// testASGI is a tiny ASGI app for uvicorn: /pid, /sleep?SECONDS (async:
// a worker sleeps for many requests at once), anything else says hello.
const testASGI = `
import asyncio, os

async def app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while True:
            msg = await receive()
            if msg['type'] == 'lifespan.startup':
                await send({'type': 'lifespan.startup.complete'})
            elif msg['type'] == 'lifespan.shutdown':
                await send({'type': 'lifespan.shutdown.complete'})
                return
    path, qs = scope['path'], scope['query_string'].decode()
    if path == '/pid':
        body = str(os.getpid()).encode()
    elif path == '/sleep':
        await asyncio.sleep(float(qs or '1'))
        body = b'slept'
    else:
        body = b'Hello from uvicorn'
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': body})
`

// requireUvicorn skips without Debian's uvicorn, except in CI, where the
// peer must be installed.
func requireUvicorn(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(testUvicorn); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs %s (apt install uvicorn): %v", testUvicorn, err)
		}
		t.Skipf("needs %s: %v", testUvicorn, err)
	}
}

// startUvicorn runs a pool of n uvicorn workers serving testASGI.
func startUvicorn(t *testing.T, n int) *harness {
	t.Helper()
	requireUvicorn(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.py"), []byte(testASGI), 0o644); err != nil {
		t.Fatal(err)
	}
	app := cmdConf(dir, n, testUvicorn, "--uds", "$TANDEM_SOCKET", "--no-access-log", "main:app")
	return startHarness(t, app)
}

// TestCommand_UvicornServesConcurrently: each uvicorn worker serves many
// requests at once: 20 half-second requests on 2 workers take about half
// a second, not five.
func TestCommand_UvicornServesConcurrently(t *testing.T) {
	h := startUvicorn(t, 2)
	if code, body := h.get(t, "/"); code != 200 || body != "Hello from uvicorn" {
		t.Fatalf("GET / = %d %q", code, body)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body, err := h.fetch("/sleep?0.5"); code != 200 || body != "slept" {
				t.Errorf("GET /sleep = %d %q %v", code, body, err)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("20 × 0.5 s requests on 2 uvicorn workers took %v", took.Round(time.Millisecond))
	if took > 2500*time.Millisecond {
		t.Fatalf("took %v: requests were not served concurrently", took)
	}
}

// TestCommand_UvicornKill9UnderLoad is issue 4's done-when: a command pool
// of uvicorn processes survives kill -9 of one process with the same
// guarantees as the Python pool — only the requests in flight on it may
// fail, and it is replaced as soon as uvicorn can start.
func TestCommand_UvicornKill9UnderLoad(t *testing.T) {
	// Two workers: uvicorn's start is mostly Python imports, and more
	// workers than the CPUs of a small CI machine would measure CPU
	// contention instead of tandem.
	h := startUvicorn(t, 2)
	// Respawning is tandem's work (milliseconds); readiness then waits
	// for uvicorn's own start, ~0.3-0.5 s of Python imports on a quiet
	// 2-CPU machine and more on a loaded one, so the bound leaves room.
	kill9UnderLoad(t, h, 2, 3*time.Second)
}
