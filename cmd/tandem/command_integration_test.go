package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// commandChildren lists tandem's live child processes whose command line
// contains marker (a command app's workers).
func commandChildren(parent int, marker string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", parent)) || strings.Contains(string(status), "State:\tZ") {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte(marker)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A `command` app of uvicorn workers, from the config file through the
// binary: requests and a WebSocket reach the app, and kill -9 of one worker
// under load fails at most the requests in flight on it while tandem
// starts a replacement.
func TestCommandApp_UvicornThroughBinary(t *testing.T) {
	needPeers(t, "uvicorn")
	const clients = 4
	in := startTandem(t, `
app asgi {
    command `+debPython+` -m uvicorn --uds $TANDEM_SOCKET --app-dir {{DIR}} --ws websockets --lifespan off --no-access-log asgiapp:app;
    env PEER_NAME cmd;
    env PEER_DIR {{DIR}};
    workers 2;
}
site _ {
    listen 127.0.0.1:0;
    location / { app asgi; }
}
`, func(dir string) { writeFile(t, filepath.Join(dir, "asgiapp.py"), proxyASGIApp) })
	if err := whoIs(client(), in.url("/who"), "cmd"); err != nil {
		t.Fatal(err)
	}
	t.Run("WebSocket", func(t *testing.T) { checkWebSocketEcho(t, in.addrs[0]) })

	tandemPid := in.cmd.Process.Pid
	before := commandChildren(tandemPid, "uvicorn")
	if len(before) != 2 {
		t.Fatalf("tandem runs %d uvicorn workers, want 2", len(before))
	}
	ld := startLoad(in.url("/who"), clients, 100000, func(status int, body string) bool {
		return status == 200 && body == "cmd"
	})
	ld.waitOK(t, 100, 20*time.Second)
	victim := before[0]
	start := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := start.Add(10 * time.Second)
	for {
		now := commandChildren(tandemPid, "uvicorn")
		if len(now) == 2 && !containsPid(now, victim) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uvicorn workers after kill -9: %v, want 2 without %d", now, victim)
		}
		time.Sleep(5 * time.Millisecond)
	}
	respawned := time.Since(start)
	// Serving again through the new worker, not only alive.
	ld.waitOK(t, 200, 20*time.Second)
	ld.stop()
	t.Logf("kill -9 of uvicorn worker %d: replacement running after %v; %s", victim, respawned.Round(time.Millisecond), ld.report())
	if ld.failed.Load() > clients {
		t.Fatalf("%d requests failed; at most the %d that can be in flight on one worker may: %s", ld.failed.Load(), clients, ld.report())
	}
	in.waitLog("SIGKILL that tandem did not send", 10*time.Second)
}

func containsPid(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}
