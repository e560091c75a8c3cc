package static

import (
	"bytes"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// serveListing writes an nginx-style HTML directory listing: entries
// sorted by name (os.ReadDir order), directories first-class with a
// trailing "/", hidden entries skipped unless AllowHidden, every name
// URL-escaped in the href and HTML-escaped in the text. Listings are built
// per request (they are rare and the directory may be large), not cached.
func (h *Handler) serveListing(w http.ResponseWriter, r *http.Request, e *entry, urlPath string) int {
	d, err := h.fs.open(e.dir)
	if err != nil {
		return statusFor(err)
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return statusFor(err)
	}
	// File.ReadDir returns directory order; sort like os.ReadDir does.
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	var b bytes.Buffer
	title := html.EscapeString(urlPath)
	b.WriteString("<!DOCTYPE html>\n<html>\n<head><title>Index of ")
	b.WriteString(title)
	b.WriteString("</title></head>\n<body>\n<h1>Index of ")
	b.WriteString(title)
	b.WriteString("</h1><hr><pre><a href=\"../\">../</a>\n")
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, ".") && !h.opts.AllowHidden {
			continue
		}
		if de.IsDir() {
			name += "/"
		}
		// "./" keeps a name containing ':' from reading as a URL scheme.
		b.WriteString(`<a href="./`)
		b.WriteString(html.EscapeString((&url.URL{Path: name}).EscapedPath()))
		b.WriteString(`">`)
		b.WriteString(html.EscapeString(name))
		b.WriteString("</a>")
		if info, err := de.Info(); err == nil {
			b.WriteString("    ")
			b.WriteString(info.ModTime().UTC().Format("02-Jan-2006 15:04"))
			b.WriteString("    ")
			if de.IsDir() {
				b.WriteString("-")
			} else {
				b.WriteString(strconv.FormatInt(info.Size(), 10))
			}
		}
		b.WriteByte('\n')
	}
	b.WriteString("</pre><hr></body>\n</html>\n")
	hdr := w.Header()
	hdr["Content-Type"] = []string{"text/html; charset=utf-8"}
	hdr["Content-Length"] = []string{strconv.Itoa(b.Len())}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b.Bytes())
	}
	return 0
}
