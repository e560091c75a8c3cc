package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/tandem-server/tandem/conf"
)

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "-c FILE", stdout, stderr)
	path := fs.String("c", "", "config `FILE` to check (required)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "tandem check: -c FILE is required")
		return 2
	}
	cfg, err := conf.Load(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostLookupTimeout)
	defer cancel()
	for _, u := range lookupUpstreamHosts(ctx, cfg, net.DefaultResolver) {
		fmt.Fprintln(stderr, u.warning())
	}
	fmt.Fprintf(stdout, "%s: ok (%d sites, %d files)\n", *path, len(cfg.Sites), len(cfg.Files))
	return 0
}

// printConfigErrors prints one FILE:LINE:COL: message line per error,
// the format editors and nginx -t users expect.
func printConfigErrors(w io.Writer, err error) {
	var list conf.Errors
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		fmt.Fprintf(w, "%d error(s)\n", len(list))
		return
	}
	fmt.Fprintf(w, "tandem: %v\n", err)
}
