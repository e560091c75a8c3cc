package edge

import (
	"io"
	"net/http"

	"github.com/tandem-server/tandem/conf"
)

// headerAdder applies a location's add_header lines as its response head
// goes out, when the status is known: like nginx, a header is added to
// success and redirect responses only (200, 201, 204, 206, 301, 302, 303,
// 304, 307, 308) unless it is marked always, so a long Cache-Control meant
// for assets never lands on a 404 or a 502. It is put in front of the
// handler only for locations with add_header lines.
type headerAdder struct {
	http.ResponseWriter
	headers []conf.AddHeader
	done    bool
}

func (h *headerAdder) add(code int) {
	if h.done || code < 200 {
		return // 1xx (100 Continue, 101, 103) go out before the final head
	}
	h.done = true
	ok := addsHeaders(code)
	hdr := h.ResponseWriter.Header()
	for _, a := range h.headers {
		if ok || a.Always {
			hdr[a.Name] = append(hdr[a.Name], a.Value)
		}
	}
}

// addsHeaders is nginx's list of statuses add_header applies to.
func addsHeaders(code int) bool {
	switch code {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		return true
	}
	return false
}

func (h *headerAdder) WriteHeader(code int) {
	h.add(code)
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerAdder) Write(p []byte) (int, error) {
	h.add(http.StatusOK)
	return h.ResponseWriter.Write(p)
}

// ReadFrom keeps sendfile(2) for static files (see static.Handler).
func (h *headerAdder) ReadFrom(src io.Reader) (int64, error) {
	h.add(http.StatusOK)
	if rf, ok := h.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(h.ResponseWriter, src)
}

func (h *headerAdder) Flush() {
	h.add(http.StatusOK)
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// hijacking for WebSocket).
func (h *headerAdder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

var (
	_ io.ReaderFrom = (*headerAdder)(nil)
	_ http.Flusher  = (*headerAdder)(nil)
)
