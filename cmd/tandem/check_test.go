package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `tandem check` prints every seeded error with its FILE:LINE:COL and
// exits 1; a valid config exits 0.
func TestCheck_ReportsEveryErrorWithPosition(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.conf")
	inc := filepath.Join(dir, "sites", "extra.conf")
	writeFile(t, main, `# seeded errors, one per numbered line
site a.test {
    listen 127.0.0.1:8080;
    rot /srv;
    root `+dir+`;
}
site a.test {
    listen 127.0.0.1:8080;
    root `+dir+`/missing;
}
include sites/*.conf;
header_timeout soon;
`)
	writeFile(t, inc, `site b.test {
    listen 127.0.0.1:99999;
    root `+dir+`;
    location /x { listen 127.0.0.1:1; }
}
`)
	want := []string{
		main + ":4:5:",   // unknown directive rot
		main + ":7:6:",   // duplicate site name a.test on the same address
		main + ":9:10:",  // root that does not exist
		main + ":12:16:", // header_timeout not a duration
		inc + ":2:12:",   // bad port
		inc + ":4:19:",   // listen inside a location
	}
	out, err := exec.Command(binPath, "check", "-c", main).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("check of a broken config: err %v, want exit 1\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error at %s in output:\n%s", w, out)
		}
	}
	if !strings.Contains(string(out), `did you mean "root"`) {
		t.Errorf("unknown directive error has no suggestion:\n%s", out)
	}

	valid := filepath.Join(dir, "valid.conf")
	writeFile(t, valid, "site ok.test {\n    listen 127.0.0.1:8080;\n    root "+dir+";\n}\n")
	out, err = exec.Command(binPath, "check", "-c", valid).CombinedOutput()
	if err != nil {
		t.Fatalf("check of a valid config failed: %v\n%s", err, out)
	}
}

// An upstream host name that does not resolve is a warning with its
// position, not an error (tandem looks names up per connection, and DNS
// may come up after tandem); one that resolves says nothing.
func TestCheck_WarnsAboutUnresolvedUpstreamHosts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tandem.conf")
	// .invalid never resolves (RFC 6761); localhost always does.
	writeFile(t, path, `site a {
    listen 127.0.0.1:8080;
    location / { proxy http://localhost:8000; }
    location /x { proxy http://nowhere.invalid:8000; }
}
`)
	cmd := exec.Command(binPath, "check", "-c", path)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("check: %v (want exit 0)\n%s%s", err, stdout.String(), stderr.String())
	}
	want := path + `:4:25: warning: upstream host "nowhere.invalid"`
	if !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("stderr:\n%s\nwant one warning starting %q", stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), ": ok (") {
		t.Fatalf("stdout %q, want ok", stdout.String())
	}
}

// The example config from the README is valid.
func TestCheck_ExampleIsValid(t *testing.T) {
	out, err := exec.Command(binPath, "check", "-c", "../../examples/quickstart/tandem.conf").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// A bad command line says what is wrong; --help works for every command.
func TestCLI_HelpAndErrors(t *testing.T) {
	for _, c := range []string{"run", "check", "reload", "stop", "version"} {
		cmd := exec.Command(binPath, c, "--help")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || strings.Count(string(out), "Usage: tandem "+c) != 1 || stderr.Len() != 0 {
			t.Errorf("tandem %s --help: %v; want the usage once on stdout and nothing on stderr\nstdout:\n%s\nstderr:\n%s", c, err, out, stderr.String())
		}
	}
	cmd := exec.Command(binPath, "check", "--no-such-flag")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil || len(out) != 0 || !strings.Contains(stderr.String(), "no-such-flag") || strings.Count(stderr.String(), "Usage: tandem check") != 1 {
		t.Errorf("bad flag: %v; want exit 2, the error and the usage once on stderr\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	out, err = exec.Command(binPath, "frobnicate").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %v %s", err, out)
	}
	out, err = exec.Command(binPath, "run").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nothing to serve") {
		t.Errorf("run without config: %v %s", err, out)
	}
	out, err = exec.Command(binPath, "run", "-c", "x.conf", "--root", ".").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "either -c FILE or --root DIR") {
		t.Errorf("run with both -c and --root: %v %s", err, out)
	}
	out, err = exec.Command(binPath, "run", "--root", "/no/such/dir", "--listen", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--root") {
		t.Errorf("run --root with a missing dir: %v %s", err, out)
	}
	out, err = exec.Command(binPath, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "tandem ") {
		t.Errorf("version: %v %s", err, out)
	}
}
