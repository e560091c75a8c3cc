package conf

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
)

// memEnv is an in-memory file system for tests: files by absolute path
// (each also counts as an executable), and the set of directories that
// count as readable roots.
type memEnv struct {
	files map[string]string
	dirs  map[string]bool
}

func (m memEnv) env() env {
	return env{
		readFile: func(p string) ([]byte, error) {
			if s, ok := m.files[p]; ok {
				return []byte(s), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
		glob: func(pattern string) ([]string, error) {
			var out []string
			for name := range m.files {
				ok, err := path.Match(pattern, name)
				if err != nil {
					return nil, err
				}
				if ok {
					out = append(out, name)
				}
			}
			slices.Sort(out)
			return out, nil
		},
		checkDir: func(p string) error {
			if m.dirs[p] {
				return nil
			}
			return errors.New("directory does not exist")
		},
		// Every file counts as executable; /usr/bin/python3 exists only
		// when a test lists it.
		checkExec: func(p string) error {
			if _, ok := m.files[p]; ok {
				return nil
			}
			return errors.New("file does not exist")
		},
	}
}

// testDirs are the directories memEnv treats as existing by default.
var testDirs = map[string]bool{"/www": true, "/www2": true, "/t/www": true}

// parseMem loads src as /t/main.conf with the given extra files.
func parseMem(src string, files map[string]string) (*Config, Errors) {
	all := map[string]string{"/t/main.conf": src}
	for k, v := range files {
		all[k] = v
	}
	cfg, err := load(memEnv{files: all, dirs: testDirs}.env(), "/t/main.conf", []byte(src))
	if err != nil {
		return nil, err.(Errors)
	}
	return cfg, nil
}

// errLines formats errors one per string for comparison.
func errLines(es Errors) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, errs := parseMem(src, nil)
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v\nsource:\n%s", errs, src)
	}
	return cfg
}

// site wraps body in a valid site whose body starts on line 4, column 1.
func site(body string) string {
	return "site a.com {\nlisten 80;\nroot /www;\n" + body + "\n}\n"
}

func wantErrors(t *testing.T, src string, want ...string) {
	t.Helper()
	_, errs := parseMem(src, nil)
	got := errLines(errs)
	if !slices.Equal(got, want) {
		t.Errorf("source:\n%s\ngot errors:\n  %s\nwant:\n  %s", src,
			strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
