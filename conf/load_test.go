package conf

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestValidConf: the sample config loads without errors.
func TestValidConf(t *testing.T) {
	cfg, err := Load("testdata/valid.conf")
	if err != nil {
		t.Fatalf("valid.conf: %v", err)
	}
	if len(cfg.Sites) != 2 || len(cfg.Files) != 2 || len(cfg.Apps) != 1 {
		t.Errorf("got %d sites and %d apps from %d files, want 2, 1 and 2", len(cfg.Sites), len(cfg.Apps), len(cfg.Files))
	}
	abs, _ := filepath.Abs("testdata/example")
	if a := cfg.Apps[0]; a.Chdir != abs || a.Python != "python3" {
		t.Errorf("app chdir %q python %q, want %q and python3", a.Chdir, a.Python, abs)
	}
	if len(cfg.Upstreams) != 1 || cfg.Sites[0].Locations[0].Route.Proxy.Upstream != cfg.Upstreams[0] {
		t.Errorf("/api/ must proxy to the one upstream block: %+v", cfg.Sites[0].Locations[0].Route.Proxy)
	}
	ca, _ := filepath.Abs("testdata/upstream-ca.pem")
	if u := cfg.Upstreams[0]; u.TLSCA != ca || u.Health == nil || u.Health.URI != "/healthz" {
		t.Errorf("upstream tls_ca %q (want %q), health %+v", u.TLSCA, ca, u.Health)
	}
}

// TestBrokenConf: every seeded error in broken.conf and the file it
// includes is reported, exactly once, at its position, in file order;
// `tandem check -c` prints exactly these lines.
func TestBrokenConf(t *testing.T) {
	_, err := Load("testdata/broken.conf")
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Load returned %v, want Errors", err)
	}
	abs, _ := filepath.Abs("testdata")
	const m, inc = "testdata/broken.conf:", "testdata/broken.d/more.conf:"
	want := []string{
		m + `3:16: header_timeout: expected a duration like 30s or 5m, got "abc"`,
		m + `4:22: client_max_body_size: expected a size like 512k or 1m, got "10q"`,
		m + `5:1: "listen" is not allowed in main; allowed in: site`,
		m + `9:5: unknown directive "rot"; did you mean "root"?`,
		m + `10:5: "root" takes 1 argument, got 2`,
		m + `11:20: try_files fallback "@missing" is not a named location in this site`,
		m + `12:19: "location" is not allowed in location; allowed in: site (nested locations are not supported; move it up into the site block)`,
		m + `13:5: location "/x" is already defined in this site at testdata/broken.conf:12:5`,
		m + `16:6: site name "a.com" on 127.0.0.1:8080 is already used at testdata/broken.conf:7:6`,
		m + `17:12: a default site for 127.0.0.1:8080 is already set at testdata/broken.conf:8:12`,
		m + `18:12: invalid port "99999" in listen address "99999": want a number from 0 to 65535 (0 picks a free port)`,
		m + `19:10: root "TD/does-not-exist": directory does not exist`,
		m + `23:10: wsgi: expected MODULE:CALLABLE like blog.wsgi:application, got "blog"`,
		m + `24:13: workers: must be at least 1`,
		m + `25:23: max_requests: expected "jitter", got "100"`,
		m + `27:5: app "blog" is already defined at testdata/broken.conf:22:5`,
		m + `30:25: no app named "blgo"; did you mean "blog"?`,
		m + `36:12: server: proxy URLs take no path or query (the request's own are sent), got "http://127.0.0.1:8000/api"`,
		m + `37:41: server: must be at least 1`,
		m + `38:13: balance: "header" needs a NAME after it (the header whose value picks the server)`,
		m + `40:1: upstream "empty" has no server; add e.g. "server http://127.0.0.1:8000;"`,
		m + `43:21: trusted_proxies: expected a CIDR like 10.0.0.0/8, an IP address or private, got "10.0.0.0/33"`,
		m + `44:24: no upstream named "apii"; did you mean "api"?`,
		m + `45:37: proxy: upstream name "api" cannot be mixed with other targets; give one upstream name, or URLs only`,
		m + `46:38: "static" conflicts with "proxy" at testdata/broken.conf:46:20; a block has one handler`,
		m + `50:26: "cgi" needs a root or alias to find scripts in`,
		m + `51:20: "cgi_timeout" has no effect without "cgi" in this location or inherited from its site`,
		m + `55:19: compress: unknown algorithm "deflate"; expected zstd, br, gzip or off`,
		m + `56:23: compress_level: expected a br level from 0 to 11, got "12"`,
		m + `57:35: compress_types: expected a media type like text/html, text/*, application/*+json, */* or default, got "text"`,
		m + `58:34: "compress_min_length" has no effect without "compress" in this location or inherited from its site`,
		m + `62:11: cache: expected a duration like 10m, on or off, got "forever"`,
		m + `63:41: "cache_key" has no effect without "cache" in this location or inherited from its site`,
		m + `65:9: max_entry_size 2097152 is larger than max_size 1048576`,
		inc + `4:14: location path "static/" must start with "/" (or "@" for a named location, "~" for a regular expression)`,
		inc + `5:41: a location cannot have both root (at testdata/broken.d/more.conf:5:27) and alias`,
		inc + `6:20: error_page target "@gone" is not a named location in this site`,
		inc + `7:5: "return 301" needs a URL to redirect to`,
		inc + `8:13: expires: expected a duration like 30d, off or max, got "soon"`,
		inc + `11:1: site "c.com" has no listen directive; add e.g. "listen 80;"`,
	}
	got := strings.Split(strings.ReplaceAll(es.Error(), abs, "TD"), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// Every line marked ERR in the sources is one reported error.
	marks := 0
	for _, f := range []string{"testdata/broken.conf", "testdata/broken.d/more.conf"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		marks += len(regexp.MustCompile(`# ERR`).FindAll(src, -1))
	}
	if marks != len(want) {
		t.Errorf("%d lines marked ERR, %d errors expected", marks, len(want))
	}
}

// TestEveryDirectiveDocumented: each directive in the table has a
// "### name" heading in docs/config.md, so the reference cannot lag.
func TestEveryDirectiveDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	headings := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if name, ok := strings.CutPrefix(line, "### "); ok {
			headings[strings.Trim(strings.TrimSpace(name), "`")] = true
		}
	}
	for _, name := range directiveNames() {
		if !headings[name] {
			t.Errorf("directive %q has no \"### %s\" heading in docs/config.md", name, name)
		}
	}
}
