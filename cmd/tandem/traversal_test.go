package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// No request target, however encoded, reads a file outside the root, and
// no symlink leads out of it, end to end through the real binary and raw
// HTTP (so no client library normalises the path first).
func TestTraversal_RawRequestsNeverLeaveRoot(t *testing.T) {
	in := startTandem(t, `
site _ {
    listen 127.0.0.1:0;
    root {{DIR}}/www;
    location /linked/ { follow_symlinks on; }
}
`, func(dir string) {
		writeFile(t, filepath.Join(dir, "secret.txt"), "TOPSECRET")
		writeFile(t, filepath.Join(dir, "www/ok.txt"), "fine")
		writeFile(t, filepath.Join(dir, "www/.git/config"), "TOPSECRET")
		writeFile(t, filepath.Join(dir, "www/linked/inside.txt"), "inside")
		if err := os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(dir, "www/out.txt")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dir, filepath.Join(dir, "www/updir")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("ok.txt", filepath.Join(dir, "www/in.txt")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "shared/ext.txt"), "external")
		if err := os.Symlink(filepath.Join(dir, "shared/ext.txt"), filepath.Join(dir, "www/linked/ext.txt")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(dir, "shared/ext.txt"), filepath.Join(dir, "www/ext.txt")); err != nil {
			t.Fatal(err)
		}
	})
	targets := []string{
		"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/..%2fsecret.txt",
		"/..%2Fsecret.txt", "/%2e%2e%2fsecret.txt", "/..\\secret.txt", "/..%5csecret.txt",
		"/%252e%252e/secret.txt", "/%c0%ae%c0%ae/secret.txt", "/%c0%af../secret.txt",
		"/ok.txt%00/../../secret.txt", "/ok.txt%00", "/./../secret.txt", "//../secret.txt",
		"/linked/../../secret.txt", "/.git/config", "/%2egit/config", "/out.txt", "/updir/secret.txt",
		"../secret.txt", "/ok.txt/../../secret.txt", "/ext.txt",
	}
	for _, target := range targets {
		status, body := rawGet(t, in.addrs[0], target)
		if strings.Contains(body, "TOPSECRET") || strings.Contains(body, "external") {
			t.Errorf("GET %s leaked the secret (status %d)", target, status)
		}
		if status == 200 {
			t.Errorf("GET %s = 200, want a refusal", target)
		}
	}
	// follow_symlinks on lets a location use links that leave the root.
	if status, body := rawGet(t, in.addrs[0], "/linked/ext.txt"); status != 200 || body != "external" {
		t.Errorf("follow_symlinks on: %d %q", status, body)
	}
	// Symlinks inside the root still work.
	if status, body := rawGet(t, in.addrs[0], "/in.txt"); status != 200 || !strings.HasSuffix(body, "fine") {
		t.Errorf("in-root symlink: %d %q", status, body)
	}
}

// rawGet sends target verbatim on a fresh connection and returns the
// status and the whole response.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}
