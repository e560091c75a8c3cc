package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// disk is the optional tier for bodies too large for memory. Files are
// named by a hash of the entry key plus a sequence number (so a
// replacement never overwrites a file a hit is reading), written to a
// temporary name and renamed when complete. The index stays in memory,
// so the tier does not survive a restart: openDisk clears it.
type disk struct {
	dir string
	seq atomic.Uint64
	// create opens a temporary file; tests replace it to simulate a full
	// disk.
	create func(dir string) (tempFile, error)
}

// tempFile is the part of *os.File a capture uses.
type tempFile interface {
	io.Writer
	Name() string
	Close() error
}

const (
	bodySuffix = ".body"
	tempPrefix = ".tmp-"
)

// openDisk creates dir (0700) and deletes body and temporary files an
// earlier process left there. Other files are left alone.
func openDisk(dir string) (*disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk tier: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("disk tier: %w", err)
	}
	for _, de := range ents {
		n := de.Name()
		if de.Type().IsRegular() && (strings.HasSuffix(n, bodySuffix) || strings.HasPrefix(n, tempPrefix)) {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
	return &disk{dir: dir, create: createTemp}, nil
}

func createTemp(dir string) (tempFile, error) {
	return os.CreateTemp(dir, tempPrefix+"*")
}

// begin starts a body file.
func (d *disk) begin() (*diskWriter, error) {
	f, err := d.create(d.dir)
	if err != nil {
		return nil, fmt.Errorf("disk tier: create: %w", err)
	}
	return &diskWriter{d: d, f: f}, nil
}

// diskWriter is one body being written.
type diskWriter struct {
	d *disk
	f tempFile
}

func (w *diskWriter) write(p []byte) error {
	if _, err := w.f.Write(p); err != nil {
		return fmt.Errorf("disk tier: %w", err) // a *PathError: names the op and file
	}
	return nil
}

// commit closes the file and renames it to its final name.
func (w *diskWriter) commit(key string) (string, error) {
	tmp := w.f.Name()
	if err := w.f.Close(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("disk tier: %w", err)
	}
	sum := sha256.Sum256([]byte(key))
	name := hex.EncodeToString(sum[:16]) + "-" + strconv.FormatUint(w.d.seq.Add(1), 16) + bodySuffix
	path := filepath.Join(w.d.dir, name)
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("disk tier: rename: %w", err)
	}
	return path, nil
}

// abort discards the file.
func (w *diskWriter) abort() {
	_ = w.f.Close()
	_ = os.Remove(w.f.Name())
}
