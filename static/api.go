package static

import (
	"time"

	"go.uber.org/zap"
)

// Options configure one file handler (one site or location).
// The edge builds one Handler per location at config load.
type Options struct {
	// Root is the absolute directory files are served from.
	Root string
	// StripPrefix is removed from the URL path before it is joined to Root
	// (used for `alias`: location /img/ + alias /srv/pics/ → StripPrefix "/img/").
	StripPrefix string
	// Index names tried, in order, when the path is a directory. Default ["index.html"].
	Index []string
	// Autoindex enables HTML directory listings (default off → 403 for dirs without index).
	Autoindex bool
	// FollowSymlinks allows symlinks that resolve outside Root.
	FollowSymlinks bool
	// AllowHidden allows path segments starting with '.'.
	AllowHidden bool
	// Precompressed lists sidecar encodings to look for, in preference order:
	// any of "zstd" (.zst), "br" (.br), "gzip" (.gz). Empty = none.
	Precompressed []string
	// Expires sets Cache-Control: max-age and Expires; 0 = header not set,
	// negative = "no-cache" style off (no headers added).
	Expires time.Duration
	// Log gets what only the handler sees: a file that shrank while it
	// was being sent. nil logs nothing.
	Log *zap.Logger
}

// Kind is what a URL path names under a Handler's Root, as Lookup reports it
// to try_files.
type Kind uint8

const (
	// NotFound: nothing servable there, or the path was refused (escape
	// attempt, hidden segment, symlink out of Root, unreadable).
	NotFound Kind = iota
	// File: a regular file.
	File
	// Dir: a directory.
	Dir
)

// String names the kind for logs and test failures.
func (k Kind) String() string {
	switch k {
	case File:
		return "file"
	case Dir:
		return "dir"
	default:
		return "notfound"
	}
}

// CacheConfig sizes the shared open-file/stat cache. Zero fields take the
// defaults documented on each field.
type CacheConfig struct {
	// MaxEntries bounds the number of cached paths, positive and negative
	// (default 10000).
	MaxEntries int
	// MaxBytes bounds the file content held in memory across all entries
	// (default 64 MiB). Metadata is not counted.
	MaxBytes int64
	// Valid is how long an entry is trusted before the file is stat'ed again
	// (default 1s, like nginx open_file_cache_valid). A changed or removed
	// file is noticed at most Valid after the change.
	Valid time.Duration
	// MaxFileInMemory: files up to this size are read once and served from
	// memory; larger ones are sent with sendfile from a descriptor the
	// cache keeps open (default 256 KiB; see doc.go for the measurement
	// behind it).
	// Negative disables in-memory content.
	MaxFileInMemory int64
}
