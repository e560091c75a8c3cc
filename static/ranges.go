package static

import (
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
)

// maxRanges bounds the parts of one multipart/byteranges answer; a request
// asking for more is served whole (RFC 9110 §14.2 lets a server ignore
// Range), which defeats many-tiny-ranges amplification.
const maxRanges = 64

// httpRange is one satisfiable byte range, length > 0.
type httpRange struct {
	start, length int64
}

func (r httpRange) contentRange(size int64) string {
	b := make([]byte, 0, 64)
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.start+r.length-1, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}

// parseRange parses a Range value (RFC 9110 §14.1.2) against size.
// valid is false for anything to be ignored (another unit, bad syntax, too
// many or overlapping-beyond-size ranges): the whole file is then sent.
// A valid header whose ranges are all unsatisfiable yields no ranges (416).
func parseRange(s string, size int64) (ranges []httpRange, valid bool) {
	unit, set, ok := strings.Cut(s, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, false
	}
	var sum int64
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue // empty list elements are allowed (RFC 9110 §5.6.1)
		}
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			return nil, false
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var r httpRange
		if first == "" { // suffix: the last N bytes
			n, ok := parseDigits(last)
			if !ok {
				return nil, false
			}
			if n == 0 || size == 0 {
				continue // unsatisfiable on its own
			}
			n = min(n, size)
			r = httpRange{size - n, n}
		} else {
			i, ok := parseDigits(first)
			if !ok {
				return nil, false
			}
			j := size - 1
			if last != "" {
				if j, ok = parseDigits(last); !ok || j < i {
					return nil, false
				}
				j = min(j, size-1)
			}
			if i >= size {
				continue
			}
			r = httpRange{i, j - i + 1}
		}
		ranges = append(ranges, r)
		sum += r.length
		if len(ranges) > maxRanges || sum > size {
			return nil, false
		}
	}
	return ranges, true
}

// parseDigits parses a non-negative decimal of DIGITs only (no sign).
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// serveRanges answers a Range request for v (RFC 9110 §14.2, §15.3.7).
// Returns 500 unwritten if the file cannot be opened.
func (h *Handler) serveRanges(w http.ResponseWriter, r *http.Request, f *fileData, v *variant, spec string) int {
	ranges, valid := parseRange(spec, v.size)
	if !valid {
		return h.sendWhole(w, r, f, v)
	}
	hdr := w.Header()
	if len(ranges) == 0 {
		hdr["Content-Range"] = []string{"bytes */" + strconv.FormatInt(v.size, 10)}
		hdr["Content-Type"] = []string{"text/plain; charset=utf-8"}
		delete(hdr, "Etag")
		delete(hdr, "Last-Modified")
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		io.WriteString(w, "416 Range Not Satisfiable\n")
		return 0
	}
	var fl *os.File
	if v.body == nil && r.Method != http.MethodHead {
		var shared *sharedFile
		var err error
		if fl, shared, err = h.openBody(v); err != nil {
			clearFileHeaders(hdr)
			return statusFor(err)
		}
		defer closeBody(fl, shared)
	}
	if v.hEnc != nil {
		hdr["Content-Encoding"] = v.hEnc
	}
	if len(ranges) == 1 {
		rg := ranges[0]
		hdr["Content-Range"] = []string{rg.contentRange(v.size)}
		hdr["Content-Type"] = f.ctype
		hdr["Content-Length"] = []string{strconv.FormatInt(rg.length, 10)}
		w.WriteHeader(http.StatusPartialContent)
		if r.Method != http.MethodHead {
			h.sendSection(w, f, v, fl, rg)
		}
		return 0
	}
	h.sendMultipart(w, r, f, v, fl, ranges)
	return 0
}

// sendMultipart writes a multipart/byteranges body. Its length is computed
// first (by rendering the part headers into a counter) so the response has
// a Content-Length like nginx's, not chunked encoding.
func (h *Handler) sendMultipart(w http.ResponseWriter, r *http.Request, f *fileData, v *variant, fl *os.File, ranges []httpRange) {
	parts := make([]textproto.MIMEHeader, len(ranges))
	for i, rg := range ranges {
		parts[i] = textproto.MIMEHeader{
			"Content-Type":  f.ctype,
			"Content-Range": {rg.contentRange(v.size)},
		}
	}
	var cw countingWriter
	mw := multipart.NewWriter(&cw)
	for i, rg := range ranges {
		mw.CreatePart(parts[i])
		cw += countingWriter(rg.length)
	}
	mw.Close()
	hdr := w.Header()
	hdr["Content-Type"] = []string{"multipart/byteranges; boundary=" + mw.Boundary()}
	hdr["Content-Length"] = []string{strconv.FormatInt(int64(cw), 10)}
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return
	}
	out := multipart.NewWriter(w)
	out.SetBoundary(mw.Boundary())
	for i, rg := range ranges {
		pw, err := out.CreatePart(parts[i])
		if err != nil || !h.sendSection(pw, f, v, fl, rg) {
			return // client gone or file shrank; net/http closes the connection
		}
	}
	out.Close()
}

// sendSection copies one range from memory or from the open file. For a
// single range w is the ResponseWriter, and io.Copy of an
// *io.SectionReader reaches net/http's ReadFrom and so the edge's
// sendfile at an offset. fl may be shared: only explicit offsets.
func (h *Handler) sendSection(w io.Writer, f *fileData, v *variant, fl *os.File, rg httpRange) bool {
	if v.body != nil {
		_, err := w.Write(v.body[rg.start : rg.start+rg.length])
		return err == nil
	}
	return h.copyFile(w, f, fl, rg.start, rg.length)
}

// countingWriter counts bytes written to it.
type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
