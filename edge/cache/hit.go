package cache

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// serveStoredAs writes e as the response to r, with Age and the status
// headers. Conditional requests get 304 and single byte ranges 206, both
// evaluated against the stored response (RFC 9111 §4.3.2, RFC 9110
// §13-14). It reports false, having written nothing, when e's disk body
// has gone (the entry is then dropped).
func (h *handler) serveStoredAs(w http.ResponseWriter, r *http.Request, e *entry, now time.Time, x []string, s cacheStatus) bool {
	var f *os.File
	if e.file != "" && r.Method != http.MethodHead {
		var err error
		if f, err = os.Open(e.file); err != nil {
			h.c.remove(e)
			return false
		}
		defer f.Close()
	}
	hd := w.Header()
	for k, v := range e.header {
		hd[k] = v
	}
	hd["Age"] = []string{strconv.FormatInt(int64(e.currentAge(now)/time.Second), 10)}
	h.c.setStatus(hd, x, s)

	if e.status == http.StatusOK && notModified(r, e.etag, e.lastModified) {
		writeNotModified(w)
		return true
	}
	if e.status == http.StatusOK && r.Method == http.MethodGet && r.Header["Range"] != nil {
		if h.serveRange(w, r, e, f) {
			return true
		}
	}
	w.WriteHeader(e.status)
	if r.Method == http.MethodHead {
		return true
	}
	if f != nil {
		_, _ = io.Copy(w, f)
	} else {
		_, _ = w.Write(e.body)
	}
	return true
}

// notModified evaluates If-None-Match (weak comparison), or without it
// If-Modified-Since, against a representation's validators (RFC 9110
// §13.1.2, §13.1.3).
func notModified(r *http.Request, etag, lastModified string) bool {
	if inm := r.Header["If-None-Match"]; inm != nil {
		if etag == "" {
			return false
		}
		for _, line := range inm {
			for tag := range strings.SplitSeq(line, ",") {
				tag = strings.TrimSpace(tag)
				if tag == "*" || weakMatch(tag, etag) {
					return true
				}
			}
		}
		return false
	}
	ims := headerValue(r.Header, "If-Modified-Since")
	if ims == "" || lastModified == "" {
		return false
	}
	t, err := http.ParseTime(ims)
	lm, err2 := http.ParseTime(lastModified)
	return err == nil && err2 == nil && !lm.After(t)
}

// weakMatch compares entity tags ignoring W/ (RFC 9110 §8.8.3.2).
func weakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// writeNotModified sends 304 with the stored header minus the fields
// describing the body, as net/http's ServeContent does.
func writeNotModified(w http.ResponseWriter) {
	h := w.Header()
	delete(h, "Content-Type")
	delete(h, "Content-Length")
	delete(h, "Content-Encoding")
	if h["Etag"] != nil {
		delete(h, "Last-Modified")
	}
	w.WriteHeader(http.StatusNotModified)
}

// serveRange answers a single byte range from a stored 200 (RFC 9110
// §14). Multiple ranges, a failed If-Range or an unparsable Range get the
// whole response (false), which RFC 9110 §14.2 allows.
func (h *handler) serveRange(w http.ResponseWriter, r *http.Request, e *entry, f *os.File) bool {
	if ir := r.Header.Get("If-Range"); ir != "" && !ifRangeMatches(ir, e) {
		return false
	}
	size := e.bodyLen
	start, end, ok, satisfiable := parseRange(r.Header.Get("Range"), size)
	if !ok {
		return false
	}
	hd := w.Header()
	if !satisfiable {
		delete(hd, "Content-Length")
		hd["Content-Range"] = []string{"bytes */" + strconv.FormatInt(size, 10)}
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return true
	}
	n := end - start + 1
	hd["Content-Range"] = []string{"bytes " + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(end, 10) + "/" + strconv.FormatInt(size, 10)}
	hd["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	w.WriteHeader(http.StatusPartialContent)
	if f != nil {
		_, _ = io.Copy(w, io.NewSectionReader(f, start, n))
	} else {
		_, _ = w.Write(e.body[start : end+1])
	}
	return true
}

// ifRangeMatches: a strong ETag match, or a date equal to Last-Modified.
func ifRangeMatches(ir string, e *entry) bool {
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		return !strings.HasPrefix(ir, "W/") && ir == e.etag
	}
	return e.lastModified != "" && ir == e.lastModified
}

// parseRange parses one "bytes=" range against size. ok is false for
// anything but a single well-formed range; satisfiable is false when the
// range starts past the end.
func parseRange(s string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(s, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if a == "" { // suffix: the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		return max(0, size-n), size - 1, true, true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false, false
	}
	end = size - 1
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
			return 0, 0, false, false
		}
		end = min(end, size-1)
	}
	if start >= size {
		return 0, 0, true, false
	}
	return start, end, true, true
}
