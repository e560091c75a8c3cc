package conf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTree creates files (path relative to dir -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadErrs runs Load and returns its error lines with dir replaced by "D".
func loadErrs(t *testing.T, dir, main string) (*Config, []string) {
	t.Helper()
	cfg, err := Load(filepath.Join(dir, main))
	if err == nil {
		return cfg, nil
	}
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("Load returned %T, want Errors", err)
	}
	lines := errLines(es)
	for i := range lines {
		lines[i] = strings.ReplaceAll(lines[i], dir, "D")
	}
	return nil, lines
}

// TestInclude_GlobRelativeToIncludingFile: patterns resolve against the
// directory of the file that contains the include, files are read in
// sorted order, and nested includes use their own directory.
func TestInclude_GlobRelativeToIncludingFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"main.conf":            "include sites/*.conf;\n",
		"sites/b.conf":         "site b.com { listen 80; include ../snippets/common.conf; }\n",
		"sites/a.conf":         "site a.com { listen 80; root ../www; }\n",
		"sites/ignored.txt":    "garbage",
		"snippets/common.conf": "root www;\nautoindex on;\n",
		"www/index.html":       "hi",
		"snippets/www/x":       "x",
	})
	cfg, errs := loadErrs(t, dir, "main.conf")
	if errs != nil {
		t.Fatalf("errors: %v", errs)
	}
	var names []string
	for _, s := range cfg.Sites {
		names = append(names, s.Names[0])
	}
	if !slices.Equal(names, []string{"a.com", "b.com"}) {
		t.Errorf("site order %v, want sorted include order [a.com b.com]", names)
	}
	if got := cfg.Sites[0].Route.Root; got != filepath.Join(dir, "www") {
		t.Errorf("a.com root %s: relative to sites/a.conf's dir", got)
	}
	if got := cfg.Sites[1].Route.Root; got != filepath.Join(dir, "snippets/www") {
		t.Errorf("b.com root %s: relative to the snippet's own dir", got)
	}
	want := []string{"main.conf", "sites/a.conf", "sites/b.conf", "snippets/common.conf"}
	for i := range want {
		want[i] = filepath.Join(dir, want[i])
	}
	if !slices.Equal(cfg.Files, want) {
		t.Errorf("Files = %v, want %v", cfg.Files, want)
	}
}

// TestInclude_Errors pins missing files, empty globs, cycles and errors
// inside included files (reported against the included file).
func TestInclude_Errors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"empty glob is fine", map[string]string{"main.conf": "include conf.d/*.conf;"}, nil},
		{"missing file", map[string]string{"main.conf": "\ninclude nope.conf;"},
			[]string{`D/main.conf:2:9: include "nope.conf": no such file`}},
		{"bad pattern", map[string]string{"main.conf": "include [;"},
			[]string{`D/main.conf:1:9: include "[": syntax error in pattern`}},
		{"arg count", map[string]string{"main.conf": "include a b;"},
			[]string{`D/main.conf:1:1: "include" takes 1 argument, got 2`}},
		{"self cycle", map[string]string{"main.conf": "include main.conf;"},
			[]string{`D/main.conf:1:9: include cycle: "D/main.conf" is already being read (main.conf -> main.conf)`}},
		{"two-file cycle", map[string]string{"main.conf": "include a.conf;", "a.conf": "\n  include main.conf;"},
			[]string{`D/a.conf:2:11: include cycle: "D/main.conf" is already being read (main.conf -> a.conf -> main.conf)`}},
		{"error in included file", map[string]string{"main.conf": "include a.conf;\nrot;", "a.conf": "site x { listen 80; root /; static }"},
			[]string{`D/main.conf:2:1: unknown directive "rot"; did you mean "root"?`,
				`D/a.conf:1:36: expected ";" to end "static", got "}"`}},
		{"include inside a block", map[string]string{"main.conf": "site a { listen 80; include loc.conf; }", "loc.conf": "location / { listen 81; }"},
			[]string{`D/loc.conf:1:14: "listen" is not allowed in location; allowed in: site`}},
		{"same file twice is not a cycle", map[string]string{
			"main.conf": "site a { listen 80; include s.conf; }\nsite b { listen 80; include s.conf; }",
			"s.conf":    "return 204;"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, c.files)
			_, got := loadErrs(t, dir, "main.conf")
			if !slices.Equal(got, c.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

// TestLoad_Unreadable: a main file that cannot be read is one error
// naming the file, with no line.
func TestLoad_Unreadable(t *testing.T) {
	_, err := Load("/nonexistent/tandem.conf")
	if err == nil || err.Error() != "/nonexistent/tandem.conf: cannot read config: no such file or directory" {
		t.Errorf("err = %v", err)
	}
	if !os.IsNotExist(err.(Errors)[0].Unwrap()) {
		t.Errorf("cause should be the os error, got %v", err.(Errors)[0].Unwrap())
	}
}
