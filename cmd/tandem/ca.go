package main

import (
	"fmt"
	"io"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge"
)

// cmdCA prints the root certificate of the local CA behind `tls
// internal`, creating the CA when it does not exist yet. The PEM goes to
// stdout alone, so `tandem ca > tandem-root.pem` gives a file to trust;
// the path goes to stderr.
func cmdCA(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("ca", "[-c FILE]", stdout, stderr)
	path := fs.String("c", "", "config `FILE` whose tls_storage holds the CA; without it, "+conf.DefaultTLSStorage())
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	storage := conf.DefaultTLSStorage()
	if *path != "" {
		cfg, err := conf.Load(*path)
		if err != nil {
			printConfigErrors(stderr, err)
			return 1
		}
		storage = cfg.TLSStorage
	}
	certPath, pem, created, err := edge.LocalCARoot(storage)
	if err != nil {
		fmt.Fprintf(stderr, "tandem ca: %v\n", err)
		return 1
	}
	verb := "root certificate"
	if created {
		verb = "created root certificate"
	}
	fmt.Fprintf(stderr, "tandem local CA: %s %s\n", verb, certPath)
	_, _ = stdout.Write(pem)
	return 0
}
