package static

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Path resolution happens in two steps:
//
//  1. cleanPath (pure string work, no I/O) turns the request path into a
//     slash-separated path relative to Root, refusing anything that is not
//     plainly a name under Root: ".." segments, NUL, backslashes, invalid
//     UTF-8 and (unless AllowHidden) dot-segments other than /.well-known.
//  2. fsys opens and stats those relative paths without leaving Root,
//     symlinks included (see fsys).
//
// The input is the path as net/http decoded it (r.URL.Path): percent
// escapes are decoded exactly once, so "%2e%2e" arrives as ".." (refused),
// "%2f" as "/" (a separator, as nginx treats it), "%5c" as "\" (refused),
// "%00" as NUL (refused), "%c0%ae" as the invalid UTF-8 bytes C0 AE (refused)
// and "%252e" as the literal name "%2e" (a harmless file name that is never
// decoded again). Working on the decoded form means there is exactly one
// decoding, done by net/http, and nothing here ever decodes a second time.

// cleanPath maps a decoded URL path to a path relative to Root ("" is Root
// itself). slash reports whether the URL named a directory (ended in "/").
// ok is false when the path is refused; callers treat that as NotFound.
func cleanPath(urlPath, stripPrefix string, allowHidden bool) (rel string, slash, ok bool) {
	if stripPrefix != "" {
		if !strings.HasPrefix(urlPath, stripPrefix) {
			return "", false, false
		}
		urlPath = urlPath[len(stripPrefix):]
		if urlPath == "" {
			// "/img/" stripped from "/img/": the alias root as a directory.
			return "", strings.HasSuffix(stripPrefix, "/"), true
		}
	}
	if !utf8.ValidString(urlPath) || strings.ContainsAny(urlPath, "\x00\\") {
		return "", false, false
	}
	slash = strings.HasSuffix(urlPath, "/")
	// Walk segments; most paths are already clean, so only build a new
	// string when a segment has to be dropped ("//" or "/./").
	segs := make([]string, 0, 8)
	dirty := false
	for p, atStart := urlPath, true; p != ""; atStart = false {
		var seg string
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			seg, p = p, ""
		}
		switch {
		case seg == "" || seg == ".":
			// Only a single leading "/" is expected; anything else empty
			// or "." means the string must be rebuilt.
			dirty = dirty || !atStart || seg == "."
			continue
		case seg == "..":
			return "", false, false
		case seg[0] == '.' && !allowHidden && !(len(segs) == 0 && seg == ".well-known"):
			return "", false, false
		}
		segs = append(segs, seg)
	}
	if !dirty {
		// Already clean: reuse the input without its outer slashes.
		return strings.TrimSuffix(strings.TrimPrefix(urlPath, "/"), "/"), slash, true
	}
	return strings.Join(segs, "/"), slash, true
}

// fsys opens and stats paths relative to Root without ever leaving it.
//
// Unless FollowSymlinks is set, access goes through an os.Root, which
// resolves every component with openat(O_NOFOLLOW) and refuses a symlink
// leading outside: there is no window between the check and the open for a
// swapped symlink to exploit. os.Root also refuses absolute symlinks even
// when they point back inside Root; for those (and only after os.Root
// refused) the path is checked with filepath.EvalSymlinks against the real
// Root and, when it lands inside, the real path is used.
type fsys struct {
	dir      string   // Root as configured (absolute, cleaned)
	realRoot string   // Root with symlinks evaluated, for the fallback check
	root     *os.Root // nil when FollowSymlinks
}

func newFsys(dir string, follow bool) (*fsys, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	f := &fsys{dir: dir, realRoot: real}
	if !follow {
		if f.root, err = os.OpenRoot(dir); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *fsys) close() error {
	if f.root == nil {
		return nil
	}
	return f.root.Close()
}

// target is where a relative path was found: either a name for the
// os.Root, or (FollowSymlinks or the absolute-symlink fallback) an absolute
// path opened directly.
type target struct {
	rel string // relative to Root, used when abs == ""
	abs string
}

// locate stats rel and reports where it is to be opened from.
func (f *fsys) locate(rel string) (target, fs.FileInfo, error) {
	if rel == "" {
		rel = "."
	}
	if f.root == nil {
		abs := filepath.Join(f.dir, filepath.FromSlash(rel))
		fi, err := os.Stat(abs)
		return target{abs: abs}, fi, err
	}
	fi, err := f.root.Stat(rel)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return target{rel: rel}, fi, err
	}
	// os.Root refused (escaping or absolute symlink, loop, ...). Accept
	// the path only if its fully resolved form is inside the real Root.
	real, eerr := filepath.EvalSymlinks(filepath.Join(f.dir, filepath.FromSlash(rel)))
	if eerr != nil || !within(f.realRoot, real) {
		return target{}, nil, fs.ErrNotExist
	}
	fi, err = os.Stat(real)
	return target{abs: real}, fi, err
}

// open opens a located target for reading.
func (f *fsys) open(t target) (*os.File, error) {
	if t.abs != "" {
		return os.Open(t.abs)
	}
	return f.root.Open(t.rel)
}

// within reports whether p is root or below it (both cleaned, absolute).
func within(root, p string) bool {
	if p == root {
		return true
	}
	if root == string(filepath.Separator) {
		return strings.HasPrefix(p, root)
	}
	return strings.HasPrefix(p, root) && p[len(root)] == filepath.Separator
}
