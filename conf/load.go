package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// env is the package's only contact with the file system: reading config
// files and certificate files (tls_ca, tls, tls_client_ca), globbing includes, checking that roots are
// readable directories and that python executables exist. Tests and the fuzzer swap it for an
// in-memory one.
type env struct {
	readFile func(path string) ([]byte, error)
	glob     func(pattern string) ([]string, error)
	// checkDir returns nil when path is a readable directory, else an
	// error phrased to follow the path ("does not exist").
	checkDir func(path string) error
	// checkExec returns nil when path is an executable file, else an error
	// phrased like checkDir's. It also picks the default python.
	checkExec func(path string) error
}

func osEnv() env {
	return env{readFile: os.ReadFile, glob: filepath.Glob, checkDir: checkDirOS, checkExec: checkExecOS}
}

func checkExecOS(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("file does not exist")
	case err != nil:
		return fmt.Errorf("cannot stat file: %w", pathErrCause(err))
	case fi.IsDir():
		return errors.New("is a directory")
	case fi.Mode().Perm()&0o111 == 0:
		return errors.New("is not executable")
	}
	return nil
}

func checkDirOS(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("directory does not exist")
	case err != nil:
		return fmt.Errorf("cannot stat directory: %w", pathErrCause(err))
	case !fi.IsDir():
		return errors.New("is not a directory")
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("directory is not readable: %w", pathErrCause(err))
	}
	return f.Close()
}

// pathErrCause drops the path from *fs.PathError: the message already
// names it.
func pathErrCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Load reads the config file at path, its includes, and checks it. On any
// problem it returns a nil *Config and an Errors listing every problem
// found, each as FILE:LINE:COL: message, in file order. File names in
// positions are spelled as given (path, and includes joined to its
// directory), so they make sense from the caller's working directory.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{Pos: Pos{File: path}, Msg: "cannot read config: " + pathErrCause(err).Error(), Err: err}}
	}
	return load(osEnv(), path, src)
}

// Parse is Load for a config already in memory; name is used in positions,
// and includes and relative paths resolve against name's directory.
func Parse(name string, src []byte) (*Config, error) {
	if name == "" {
		name = "config" // positions need a file name
	}
	return load(osEnv(), name, src)
}

// load runs the pipeline: parse (with includes), build, validate, then
// defaults and inheritance, which only run on a valid config.
func load(e env, name string, src []byte) (*Config, error) {
	errs := &errList{}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, Errors{{Pos: Pos{File: name}, Msg: "cannot resolve config path: " + err.Error(), Err: err}}
	}
	p := &parser{env: e, errs: errs, order: map[string]int{}}
	nodes := p.parseFile(name, abs, src)
	cfg := &Config{}
	b := &builder{errs: errs, cfg: cfg}
	b.buildMain(nodes)
	validate(cfg, e, errs)
	if len(errs.errs) > 0 {
		return nil, errs.sorted(p.order)
	}
	applyDefaults(cfg, e)
	cfg.Files = p.files
	return cfg, nil
}

// QuickStart builds the config behind `tandem run --root DIR --listen
// ADDR`: one default site "_" on listen serving root, everything else at
// its default. An empty listen means ":8080". Errors are reported against
// the flags, e.g. "--root: directory does not exist".
func QuickStart(root, listen string) (*Config, error) {
	if listen == "" {
		listen = ":8080"
	}
	var errs Errors
	addr, err := normalizeListen(listen)
	if err != nil {
		errs = append(errs, &Error{Pos: Pos{File: "--listen"}, Msg: err.Error(), Err: err})
	}
	absRoot, err := filepath.Abs(root)
	if err == nil {
		err = checkDirOS(absRoot)
	}
	if err != nil {
		errs = append(errs, &Error{Pos: Pos{File: "--root"}, Msg: fmt.Sprintf("%q: %v", root, err), Err: err})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	cfg := &Config{Limits: Limits{MaxBodyBytes: -1}}
	cfg.Sites = []*Site{{
		Names:        []string{"_"},
		Listen:       []Listen{{Addr: addr, Default: true}},
		Route:        Route{Root: absRoot, Static: true},
		MaxBodyBytes: -1,
	}}
	applyDefaults(cfg, osEnv())
	return cfg, nil
}
