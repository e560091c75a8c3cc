// Command tandem is the nginx + gunicorn replacement: one binary that serves
// sites from one config file.
//
//	tandem run -c FILE          serve in the foreground
//	tandem run --root DIR --listen ADDR   serve a folder without a config
//	tandem check -c FILE        validate a config, print every error
//	tandem reload -c FILE       tell the running instance to reload
//	tandem stop -c FILE         stop the running instance gracefully
//	tandem ca [-c FILE]         print the local CA's root (tls internal)
//	tandem version              print the version
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "serve sites in the foreground (SIGTERM stops, SIGHUP reloads, SIGUSR1 reopens logs)", cmdRun},
		{"check", "validate a config file and print every error as FILE:LINE:COL: message", cmdCheck},
		{"reload", "ask the running instance (found through its pid file) to reload its config", cmdReload},
		{"stop", "ask the running instance to stop gracefully and wait for it to exit", cmdStop},
		{"ca", "print the root certificate of the local CA behind `tls internal` (created if missing) for trust stores", cmdCA},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	quietQUICBufferWarning()
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// quietQUICBufferWarning turns off quic-go's own warning about small UDP
// buffers, which it prints with the standard log package (to stderr,
// outside the error log); the edge logs it through zap instead. It is
// process-wide, hence here. An operator's explicit setting wins.
func quietQUICBufferWarning() {
	const env = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"
	if _, set := os.LookupEnv(env); !set {
		_ = os.Setenv(env, "true")
	}
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "-v", "--version":
		return cmdVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "tandem: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "tandem: one binary for the web server and the app server.")
	fmt.Fprintln(w, "\nUsage: tandem COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tandem COMMAND --help' for a command's flags.")
}

// newFlags makes a flag set whose --help prints the command's summary
// and flags to stdout, and whose errors go to stderr.
func newFlags(name, synopsis string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: tandem %s %s\n\n", name, synopsis)
		for _, c := range commands() {
			if c.name == name {
				fmt.Fprintf(out, "%s\n\n", c.summary)
			}
		}
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, returning an exit code when the command should
// stop (0 after --help, 2 on a bad flag).
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (int, bool) {
	// The flag package prints the usage itself, to the set's output, both
	// for --help and after a bad flag's error. Held back until the outcome
	// is known, so that help goes to stdout alone and errors to stderr.
	stderr := fs.Output()
	var printed bytes.Buffer
	fs.SetOutput(&printed)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, false
	}
	if err != nil {
		_, _ = printed.WriteTo(stderr)
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "tandem %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", stdout, stderr)
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	fmt.Fprintf(stdout, "tandem %s%s %s %s/%s\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
