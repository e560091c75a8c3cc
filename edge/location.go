package edge

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge/compress"
	"github.com/tandem-server/tandem/static"
	"github.com/tandem-server/tandem/upstream"
)

// maxInternalRedirects bounds try_files and error_page hops, so a config
// loop answers 500 instead of spinning (nginx allows 10 as well).
const maxInternalRedirects = 10

// reqState travels with a request through internal redirects.
type reqState struct {
	hops int
	// inErrorPage stops error pages from applying to an error page's own
	// failure (nginx's recursive_error_pages off).
	inErrorPage bool
}

// location is one `location` block with its handler chosen at build time.
type location struct {
	site        *site
	path        string
	re          *regexp.Regexp    // `location ~ RE`; nil for the other kinds
	addHeaders  []conf.AddHeader  // add_header lines; nil for none
	access      []conf.AccessRule // allow/deny lines; nil for none
	noAccessLog bool              // access_log off; in the location
	auth        *basicAuth        // auth_basic; nil for none
	trusted     []netip.Prefix    // the site's trusted_proxies, for access
	noRegex     bool              // `location ^~ PATH`
	ret         *returnRule
	tryFiles    []string
	errorPages  map[int]string
	maxBody     int64           // bytes; 0 = unlimited
	files       *static.Handler // nil without root/alias
	// backend is the app pool (`app NAME;`), the proxy (`proxy ...;`) or
	// the upstream status page; nil for files, return and try_files only.
	backend AppHandler
	// compress compresses the responses this location writes itself; nil
	// when compression is off, and then nothing is wrapped at all.
	compress *compress.Compressor
	// cache is the process cache wrapped around the location (see
	// cachedLocation); nil when the location does not cache.
	cache http.Handler
}

// serve answers a request that reached this location, by path or by an
// internal redirect.
//
// With compression on, the location's own responses (its handler's, and
// its built-in error pages) go through its compressor. What it hands over
// to another location (a try_files fallback, an error_page) gets the
// writer as it came in, raw, so the location that writes the response
// decides about compression, as in nginx, and nothing is compressed twice.
// The compressor has seen nothing by then: a hand-over only happens before
// anything was written.
//
// With caching on, the cache wraps all of that: it stores the compressed
// variants, and whatever the location answers for the URL, hand-overs
// and error pages included, goes through it (a hand-over gets the cache's
// writer as raw), so the cache sees every status the location answers.
func (l *location) serve(w http.ResponseWriter, r *http.Request, path string, st reqState) {
	if st.hops > maxInternalRedirects {
		writeError(w, http.StatusInternalServerError)
		return
	}
	// Before the cache: a response cached for an allowed client must not
	// reach a refused one.
	if l.access != nil && !l.allowed(r) {
		l.fail(w, w, r, path, http.StatusForbidden, st)
		return
	}
	if l.auth != nil && !l.auth.ok(r) {
		w.Header()["Www-Authenticate"] = l.auth.challenge
		l.fail(w, w, r, path, http.StatusUnauthorized, st)
		return
	}
	switch {
	case l.cache != nil:
		l.serveCached(w, r, path, st)
	case l.compress != nil:
		l.serveUncached(w, r, path, st)
	default:
		// serveUncached's job without its frame (see static's serveFile
		// on why frames count).
		l.respond(w, w, r, path, st)
	}
}

// serveUncached is serve without the cache: compression, then respond.
func (l *location) serveUncached(w http.ResponseWriter, r *http.Request, path string, st reqState) {
	if l.compress == nil {
		l.respond(w, w, r, path, st)
		return
	}
	l.compress.Wrap(&compressed{l: l, raw: w, path: path, st: st}).ServeHTTP(w, r)
}

// compressed is one request's serve inside the location's compressor.
type compressed struct {
	l    *location
	raw  http.ResponseWriter
	path string
	st   reqState
}

func (c *compressed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.l.respond(w, c.raw, r, c.path, c.st)
}

// respond runs the location's handler, writing to w, and answers a
// status it left unwritten through error_page; raw is the writer for
// hand-overs to other locations (see serve).
func (l *location) respond(w, raw http.ResponseWriter, r *http.Request, path string, st reqState) {
	if l.addHeaders != nil {
		w = &headerAdder{ResponseWriter: w, headers: l.addHeaders}
	}
	if l.maxBody > 0 && r.ContentLength > l.maxBody {
		l.fail(w, raw, r, path, http.StatusRequestEntityTooLarge, st)
		return
	}
	if l.maxBody > 0 && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(raw, r.Body, l.maxBody)
	}
	// The handler returns a status it did not write (so error_page can
	// take over), or 0 when the response is written. It is chosen here
	// rather than in a function of its own to keep a frame off the stack
	// (see site.serveLogged).
	var status int
	switch {
	case l.ret != nil:
		status = l.ret.serve(w, r, path)
	case l.backend != nil && l.tryFiles == nil:
		status = l.backend.Serve(w, r)
	case l.tryFiles != nil:
		status = l.tryFilesServe(w, raw, r, path, st)
	case l.files != nil:
		status = l.files.Serve(w, r, path) // 405 for other methods than GET and HEAD
	default:
		status = http.StatusNotFound
	}
	if status != 0 {
		l.fail(w, raw, r, path, status, st)
	}
}

// tryFilesServe implements `try_files A B ... LAST`: the first of A, B...
// that exists is served; otherwise LAST is a status (=404), a named
// location (@app) or a URI to re-dispatch, which gets raw.
func (l *location) tryFilesServe(w, raw http.ResponseWriter, r *http.Request, path string, st reqState) int {
	n := len(l.tryFiles)
	if l.files != nil {
		for _, arg := range l.tryFiles[:n-1] {
			p := expandVars(arg, r, path)
			kind := l.files.Lookup(p)
			if kind == static.File || (kind == static.Dir && strings.HasSuffix(p, "/")) {
				return l.files.Serve(w, r, p)
			}
		}
	}
	last := l.tryFiles[n-1]
	st.hops++
	switch {
	case strings.HasPrefix(last, "="):
		code, err := strconv.Atoi(last[1:])
		if err != nil {
			return http.StatusInternalServerError
		}
		return code
	case strings.HasPrefix(last, "@"):
		named := l.site.named[last]
		if named == nil {
			return http.StatusInternalServerError
		}
		named.serve(raw, r, path, st)
		return 0
	default:
		target := expandVars(last, r, path)
		r2, p := internalRequest(r, target, false)
		l.site.dispatch(raw, r2, p, st)
		return 0
	}
}

// fail answers with status, through the location's error_page if one
// matches (which gets raw), else with the built-in page on w.
func (l *location) fail(w, raw http.ResponseWriter, r *http.Request, path string, status int, st reqState) {
	target, ok := l.errorPages[status]
	if !ok || st.inErrorPage {
		writeError(w, status)
		return
	}
	st.hops++
	st.inErrorPage = true
	if strings.HasPrefix(target, "@") {
		if named := l.site.named[target]; named != nil {
			named.serve(raw, r, path, st)
			return
		}
		writeError(w, status)
		return
	}
	r2, p := internalRequest(r, target, true)
	l.site.dispatch(&statusWriter{ResponseWriter: raw, code: status}, r2, p, st)
}

// internalRequest makes the request for an internal redirect to target.
// Error pages are fetched with GET and without conditionals or ranges, so
// the client gets the whole page with the error's status.
func internalRequest(r *http.Request, target string, errorPage bool) (*http.Request, string) {
	r2 := r.Clone(r.Context())
	u, err := url.Parse(target)
	if err != nil {
		u = &url.URL{Path: target}
	}
	r2.URL.Path = u.Path
	r2.URL.RawPath = ""
	if u.RawQuery != "" {
		r2.URL.RawQuery = u.RawQuery
	}
	if errorPage {
		if r2.Method != http.MethodHead {
			r2.Method = http.MethodGet
		}
		for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
			r2.Header.Del(h)
		}
	}
	return r2, u.Path
}

// statusWriter replaces a 200 from an error page's handler with the
// error's own status.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (s *statusWriter) WriteHeader(code int) {
	if s.wrote {
		return
	}
	s.wrote = true
	if code == http.StatusOK {
		code = s.code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// writeError writes tandem's built-in error page for status.
func writeError(w http.ResponseWriter, status int) {
	if status == upstream.StatusClientGone {
		// nginx's 499 is for the access log: the client is gone, so no
		// page is written, only the status the log records.
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
		return
	}
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	h := w.Header()
	for _, k := range []string{"Content-Encoding", "Etag", "Last-Modified", "Content-Range", "Accept-Ranges", "Cache-Control", "Expires", "Vary"} {
		delete(h, k)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	body := fmt.Sprintf("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n<hr><center>tandem</center>\r\n</body>\r\n</html>\r\n", status, text, status, text)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// expandVars substitutes the nginx-style variables tandem supports in
// try_files, return and redirect: $uri, $request_uri, $args, $host,
// $scheme.
func expandVars(s string, r *http.Request, path string) string {
	return expandVarsCaptures(s, r, path, nil)
}

// expandVarsCaptures is expandVars that also replaces $0 … $9 with the
// submatches m of a regex location (a missing group is empty, as in
// nginx), in the same pass, so text a capture brings in is never
// expanded again.
func expandVarsCaptures(s string, r *http.Request, path string, m []string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		if m != nil && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			if n := int(s[i+1] - '0'); n < len(m) {
				b.WriteString(m[n])
			}
			i++
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			j++
		}
		switch s[i+1 : j] {
		case "uri":
			b.WriteString(path)
		case "request_uri":
			b.WriteString(r.RequestURI)
		case "args", "query_string":
			b.WriteString(r.URL.RawQuery)
		case "host":
			b.WriteString(normalHost(r.Host))
		case "scheme":
			b.WriteString(scheme)
		case "remote_addr":
			b.WriteString(remoteIP(r))
		default:
			b.WriteString(s[i:j])
		}
		i = j - 1
	}
	return b.String()
}

var _ http.Handler = (*compressed)(nil)

// allowed applies the location's allow/deny lines to the client (seen
// through the site's trusted proxies): the first line that matches
// decides, and none matching allows, as in nginx.
func (l *location) allowed(r *http.Request) bool {
	ip := upstream.ClientIP(r, l.trusted)
	for _, rule := range l.access {
		if rule.Prefixes == nil {
			return rule.Allow
		}
		if ip.IsValid() {
			a := ip.WithZone("")
			for _, p := range rule.Prefixes {
				if p.Contains(a) {
					return rule.Allow
				}
			}
		}
	}
	return true
}
