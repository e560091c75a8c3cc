package edge

// CGI/1.1 (RFC 3875) for `cgi;` locations: a request runs the script its
// path names under the location's root or alias.
//
// The host side is written here rather than taken from net/http/cgi,
// whose Handler builds its exec.Cmd without a context or process group:
// nothing can kill a script that hangs before its response head (so
// cgi_timeout could not be enforced, nor a script stopped when its client
// leaves), chunked request bodies get 400, a script that prints nothing
// gets 500 instead of 502, a malformed Status line leaves an empty 200,
// and request headers spelled with "_" become HTTP_* variables. What it
// does well is kept: the RFC 3875 variable set, Status/Location handling,
// and no HTTP_PROXY (httpoxy).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/static"
	"github.com/tandem-server/tandem/upstream"
)

const (
	// cgiDefaultPath is the script's PATH unless cgi_env sets one; the
	// server's own environment is never passed on.
	cgiDefaultPath = "/usr/local/bin:/usr/bin:/bin"
	// cgiMaxLine and cgiMaxHead bound one response header line and the
	// whole response head; a script past either gets 502.
	cgiMaxLine = 16 << 10
	cgiMaxHead = 64 << 10
	// cgiExitGrace is how long a script may keep running after closing its
	// output before its process group is killed (Apache waits 3s too).
	cgiExitGrace = 3 * time.Second
	// cgiWaitDelay bounds the wait for stderr once the script has exited
	// or been killed, for background children that keep it open.
	cgiWaitDelay = time.Second
	// cgiMaxStderrLine splits long stderr lines into several log entries.
	cgiMaxStderrLine = 4 << 10
	// cgiMaxStderr bounds how much of one run's stderr reaches the error
	// log; the rest is counted, not logged. A script dumping 5 MB of
	// binary to stderr made 30 MB of log lines.
	cgiMaxStderr = 64 << 10
)

// cgiHandler runs the scripts of one location. It is immutable after
// newCGIHandler and safe for concurrent use.
type cgiHandler struct {
	// files resolves URL paths exactly as static serving does, so a path
	// static would refuse (.., hidden segments, symlinks out of the root)
	// never names a script.
	files   *static.Handler
	dir     string // the root or alias as configured: DOCUMENT_ROOT
	realDir string // dir with symlinks evaluated, to check scripts against
	strip   string // the location prefix an alias replaces; "" for root
	follow  bool   // follow_symlinks on: scripts may live outside dir
	site    string // SERVER_NAME when the request has no Host
	timeout time.Duration
	env     []conf.EnvVar // cgi_env, applied last
	log     *zap.Logger
}

// cgiOptions are what buildLocation knows about a cgi location.
type cgiOptions struct {
	files  *static.Handler
	dir    string
	strip  string
	follow bool
	site   string
	log    *zap.Logger
}

func newCGIHandler(c *conf.CGI, o cgiOptions) (*cgiHandler, error) {
	real, err := filepath.EvalSymlinks(o.dir)
	if err != nil {
		return nil, fmt.Errorf("cgi: root: %w", err)
	}
	log := o.log
	if log == nil {
		log = zap.NewNop()
	}
	return &cgiHandler{
		files: o.files, dir: o.dir, realDir: real, strip: o.strip, follow: o.follow, site: o.site,
		timeout: c.Timeout, env: c.Env, log: log.Named("cgi"),
	}, nil
}

// cgiScript is the script a request path names.
type cgiScript struct {
	name     string // SCRIPT_NAME: the URL path of the script
	pathInfo string // PATH_INFO: the rest of the URL path, "" or from "/"
	file     string // the script with symlinks resolved: what runs
}

// Serve runs the script r names. It returns 0 when it wrote the
// response, or a status it did not write: 404 no script along the path,
// 403 a directory or a file that is not executable, 413/408/400/499 the
// request body could not be read, 502 the script could not be run or
// broke the protocol, 504 no response head within cgi_timeout, 499 the
// client left first.
func (h *cgiHandler) Serve(w http.ResponseWriter, r *http.Request) int {
	sc, status := h.find(r.URL.Path)
	if status != 0 {
		return status
	}
	in, err := openCGIInput(r)
	if err != nil {
		return upstream.BodyStatus(h.log, r, err)
	}
	if in.pw != nil {
		// Scripts may answer while they read (an echo does): net/http's
		// HTTP/1 server would otherwise cut the body off at the first
		// write. HTTP/2 is full duplex anyway.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	return h.run(w, r, sc, in)
}

// find walks urlPath from the location down, as Apache does: the first
// regular file along it is the script and the rest is PATH_INFO
// (/cgi-bin/env.py/a/b runs env.py with PATH_INFO /a/b). Every prefix is
// resolved by the static handler, so refusals match static serving.
func (h *cgiHandler) find(urlPath string) (cgiScript, int) {
	if !strings.HasPrefix(urlPath, "/") {
		return cgiScript{}, http.StatusNotFound
	}
	for i := max(len(h.strip), 1); ; {
		end := len(urlPath)
		if i < end {
			if j := strings.IndexByte(urlPath[i:], '/'); j >= 0 {
				end = i + j
			}
		}
		switch h.files.Lookup(urlPath[:end]) {
		case static.File:
			return h.script(urlPath[:end], urlPath[end:])
		case static.Dir:
			if end == len(urlPath) {
				return cgiScript{}, http.StatusForbidden // no directory indexes
			}
		default:
			return cgiScript{}, http.StatusNotFound
		}
		i = end + 1
	}
}

// script checks the file behind name, which Lookup accepted, once more as
// it is now: its fully resolved path must still be inside the root
// (unless follow_symlinks is on), a regular file, and executable. The
// resolved path is what runs, so a symlink swapped after this check
// cannot redirect the exec.
func (h *cgiHandler) script(name, pathInfo string) (cgiScript, int) {
	rel := strings.TrimPrefix(name, h.strip)
	real, err := filepath.EvalSymlinks(filepath.Join(h.dir, filepath.FromSlash(rel)))
	if err != nil || (!h.follow && !inside(h.realDir, real)) {
		return cgiScript{}, http.StatusNotFound
	}
	fi, err := os.Stat(real)
	switch {
	case err != nil || !fi.Mode().IsRegular():
		return cgiScript{}, http.StatusNotFound
	case fi.Mode().Perm()&0o111 == 0:
		return cgiScript{}, http.StatusForbidden
	}
	return cgiScript{name: name, pathInfo: pathInfo, file: real}, 0
}

// inside reports whether p is dir or below it (both clean and absolute).
func inside(dir, p string) bool {
	if p == dir || dir == "/" {
		return true
	}
	return strings.HasPrefix(p, dir) && p[len(dir)] == filepath.Separator
}

// run starts the script, answers with its output and reaps it.
func (h *cgiHandler) run(w http.ResponseWriter, r *http.Request, sc cgiScript, in *cgiInput) int {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	errLog := &cgiStderr{log: h.log, script: sc.file}
	cmd := exec.CommandContext(ctx, sc.file)
	cmd.Dir = filepath.Dir(sc.file)
	cmd.Env = h.environ(r, sc, in.length)
	cmd.Stdin = in.file // nil: /dev/null
	cmd.Stderr = errLog
	// The script leads a process group of its own, so a kill reaches
	// whatever it started too (a shell's children hold its stdout open).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = cgiWaitDelay
	// stdout is a pipe of our own rather than cmd.StdoutPipe, whose read
	// end Wait closes: Wait runs from the start (below) while the output
	// is still being read.
	stdout, pw, err := os.Pipe()
	if err == nil {
		cmd.Stdout = pw
		err = cmd.Start()
		pw.Close()
		if err != nil {
			stdout.Close()
		}
	}
	if err != nil {
		in.close(w)
		return h.startFailed(sc, err)
	}
	// Waiting at once reaps the script as soon as it exits: tandem is a
	// child subreaper, and a zombie nobody waits for is taken for an
	// orphan and reaped by the appserver's reaper.
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() {
		err := reap(waited, cancel)
		stdout.Close()
		in.close(w)
		errLog.finish()
		h.logExit(ctx, r, sc, err)
	}()
	in.feed(r.Body)
	// Once ctx is done (cgi_timeout, the client gone) the process group is
	// killed and stdout closed, so reads return even if a child that left
	// the group still holds the pipe.
	context.AfterFunc(ctx, func() { _ = stdout.Close() })

	// cgi_timeout covers the head only.
	var timedOut atomic.Bool
	timer := time.AfterFunc(h.timeout, func() {
		timedOut.Store(true)
		cancel()
	})
	br := bufio.NewReaderSize(stdout, cgiMaxLine)
	head, err := readCGIHead(br)
	if !timer.Stop() || timedOut.Load() {
		h.log.Warn("script sent no response head in time; killed", zap.String("script", sc.file),
			zap.String("uri", r.RequestURI), zap.Duration("cgi_timeout", h.timeout))
		return http.StatusGatewayTimeout
	}
	if err != nil {
		cancel()
		if r.Context().Err() != nil {
			return upstream.StatusClientGone
		}
		h.log.Error("bad response from script", zap.String("script", sc.file), zap.String("uri", r.RequestURI), zap.Error(err))
		return http.StatusBadGateway
	}
	head.write(w)
	if !copyCGIBody(w, br, bodyAllowed(head.status)) {
		cancel() // the client is gone: stop the script
	}
	return 0
}

// killGroup kills the script's whole process group.
func killGroup(p *os.Process) error {
	err := syscall.Kill(-p.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// reap waits for the script to exit, giving it cgiExitGrace once its
// output is complete before its process group is killed. When the
// context is already cancelled (timeout, client gone, bad head) the kill
// has happened and this returns at once.
func reap(waited <-chan error, cancel context.CancelFunc) error {
	t := time.AfterFunc(cgiExitGrace, cancel)
	defer t.Stop()
	return <-waited
}

func (h *cgiHandler) startFailed(sc cgiScript, err error) int {
	if errors.Is(err, fs.ErrPermission) {
		h.log.Warn("script is not executable by tandem", zap.String("script", sc.file), zap.Error(err))
		return http.StatusForbidden
	}
	// A missing interpreter (#! line) or an unknown binary format.
	h.log.Error("cannot run script", zap.String("script", sc.file), zap.Error(err))
	return http.StatusBadGateway
}

// logExit reports a script that failed; a script tandem killed (timeout,
// client gone) is already reported or expected, and logged at debug.
func (h *cgiHandler) logExit(ctx context.Context, r *http.Request, sc cgiScript, err error) {
	if err == nil {
		return
	}
	lv := zap.WarnLevel
	if ctx.Err() != nil {
		lv = zap.DebugLevel
	}
	h.log.Log(lv, "script exited", zap.String("script", sc.file), zap.String("uri", r.RequestURI), zap.Error(err))
}

// environ builds the script's environment: the RFC 3875 §4.1 variables,
// the request headers as HTTP_*, PATH, and cgi_env last, so the operator
// has the final word. Nothing of tandem's own environment is passed on.
func (h *cgiHandler) environ(r *http.Request, sc cgiScript, length int64) []string {
	scheme, port := "http", "80"
	if r.TLS != nil {
		scheme, port = "https", "443"
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil && p != "" {
		port = p
	}
	serverAddr := ""
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			serverAddr, port = ap.Addr().Unmap().String(), strconv.Itoa(int(ap.Port()))
		}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	v := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   "tandem",
		"SERVER_PROTOCOL":   r.Proto,
		"SERVER_NAME":       h.serverName(r, serverAddr),
		"SERVER_PORT":       port,
		"REQUEST_METHOD":    r.Method,
		"REQUEST_URI":       uri,
		"REQUEST_SCHEME":    scheme,
		"QUERY_STRING":      r.URL.RawQuery,
		"SCRIPT_NAME":       sc.name,
		"SCRIPT_FILENAME":   sc.file,
		"DOCUMENT_ROOT":     h.dir,
		"REMOTE_ADDR":       remoteIP(r),
		// php-cgi refuses to run without it (cgi.force_redirect).
		"REDIRECT_STATUS": "200",
		"PATH":            cgiDefaultPath,
	}
	if serverAddr != "" {
		v["SERVER_ADDR"] = serverAddr
	}
	if _, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		v["REMOTE_PORT"] = p
	}
	if r.TLS != nil {
		v["HTTPS"] = "on"
	}
	if sc.pathInfo != "" {
		v["PATH_INFO"] = sc.pathInfo
		v["PATH_TRANSLATED"] = h.dir + sc.pathInfo
	}
	if length > 0 {
		v["CONTENT_LENGTH"] = strconv.FormatInt(length, 10)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		v["CONTENT_TYPE"] = ct
	}
	if r.Host != "" {
		v["HTTP_HOST"] = r.Host
	}
	for k, vals := range r.Header {
		name, ok := cgiHeaderVar(k)
		if !ok {
			continue
		}
		sep := ", "
		if name == "HTTP_COOKIE" {
			sep = "; "
		}
		if _, dup := v[name]; !dup {
			v[name] = strings.Join(vals, sep)
		}
	}
	for _, e := range h.env {
		v[e.Key] = e.Value
	}
	out := make([]string, 0, len(v))
	for k, val := range v {
		out = append(out, k+"="+val)
	}
	slices.Sort(out)
	return out
}

// serverName is SERVER_NAME: the Host the client asked for (RFC 3875
// §4.1.14 allows it), else the site's first name, else the local address.
// IPv6 literals keep their brackets, as the RFC's grammar has them.
func (h *cgiHandler) serverName(r *http.Request, serverAddr string) string {
	name := normalHost(r.Host)
	if name == "" && h.site != "_" {
		name = h.site
	}
	if name == "" {
		name = serverAddr
	}
	if strings.Contains(name, ":") && !strings.HasPrefix(name, "[") {
		name = "[" + name + "]"
	}
	return name
}

// cgiHeaderVar maps a request header to its HTTP_* variable (RFC 3875
// §4.1.18). ok is false for headers that must not become one:
//   - names with anything but letters, digits and "-": with "_" allowed,
//     X_Forwarded_For would arrive as the same HTTP_X_FORWARDED_FOR as
//     X-Forwarded-For (nginx drops them too, underscores_in_headers off);
//   - Proxy, which would become HTTP_PROXY, read by many HTTP clients as
//     their proxy setting (httpoxy, CVE-2016-5385);
//   - Content-Type and Content-Length, given as CONTENT_TYPE and
//     CONTENT_LENGTH.
func cgiHeaderVar(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "", false
		}
	}
	switch {
	case strings.EqualFold(name, "Proxy"), strings.EqualFold(name, "Content-Type"), strings.EqualFold(name, "Content-Length"):
		return "", false
	}
	return "HTTP_" + strings.ReplaceAll(strings.ToUpper(name), "-", "_"), true
}

// cgiHead is a script's response head (RFC 3875 §6).
type cgiHead struct {
	status int
	header http.Header
}

// cgiHopHeaders are connection-level headers a script cannot set for the
// client's connection (RFC 9110 §7.6.1); they are dropped.
var cgiHopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// readCGIHead reads header lines up to the blank line. Status sets the
// response status; a Location without Status means 302 (a local path is
// sent to the client too: tandem does not do RFC 3875 local redirects);
// a head with neither needs a Content-Type.
func readCGIHead(br *bufio.Reader) (cgiHead, error) {
	h := cgiHead{header: http.Header{}}
	size := 0
	for {
		line, err := br.ReadSlice('\n')
		size += len(line)
		switch {
		case err == bufio.ErrBufferFull || size > cgiMaxHead:
			return h, errors.New("response head too long")
		case err == io.EOF && size == 0:
			return h, errors.New("the script printed nothing")
		case err == io.EOF:
			return h, errors.New("the output ended inside the response head (no blank line after the headers)")
		case err != nil:
			return h, fmt.Errorf("reading the response head: %w", err)
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			break
		}
		if err := h.add(line); err != nil {
			return h, err
		}
	}
	switch {
	case h.status != 0:
	case h.header.Get("Location") != "":
		h.status = http.StatusFound
	case h.header.Get("Content-Type") == "":
		return h, errors.New("the response head has no Content-Type, Location or Status")
	default:
		h.status = http.StatusOK
	}
	return h, nil
}

// add takes one header line of the head.
func (h *cgiHead) add(line []byte) error {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || !isHeaderName(name) {
		return fmt.Errorf("malformed header line %q", truncate(line, 80))
	}
	key, val := http.CanonicalHeaderKey(string(name)), strings.Trim(string(value), " \t")
	if !isHeaderValue(val) {
		return fmt.Errorf("invalid value for header %s", key)
	}
	switch {
	case key == "Status":
		code, err := parseCGIStatus(val)
		if err != nil {
			return err
		}
		h.status = code
	case !cgiHopHeaders[key]:
		h.header.Add(key, val)
	}
	return nil
}

// isHeaderName reports whether b is a token (RFC 9110 §5.6.2).
func isHeaderName(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return len(b) > 0
}

// isHeaderValue reports whether v has no control characters but tab
// (RFC 9110 §5.5).
func isHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// parseCGIStatus reads "302" or "302 Found"; 1xx makes no sense as a
// script's final answer.
func parseCGIStatus(v string) (int, error) {
	code, _, _ := strings.Cut(v, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 || n < 200 || n > 599 {
		return 0, fmt.Errorf("bad Status %q: want a code from 200 to 599 and an optional reason", truncate([]byte(v), 40))
	}
	return n, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// write sends the head. Without a Content-Type of the script's, none is
// sent: net/http would otherwise guess one from the body.
func (h cgiHead) write(w http.ResponseWriter) {
	dst := w.Header()
	for k, v := range h.header {
		dst[k] = v
	}
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil
	}
	w.WriteHeader(h.status)
}

// bodyAllowed reports whether a response with status may have a body.
func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// copyCGIBody sends the script's output as it comes, flushing after each
// read so streaming scripts stream. For statuses without a body the
// output is read and dropped. It returns false when the client is gone.
func copyCGIBody(w http.ResponseWriter, br *bufio.Reader, allowed bool) bool {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 && allowed {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false
			}
			_ = rc.Flush()
		}
		if err != nil {
			return true // EOF, or the pipe closed under a kill
		}
	}
}

// cgiInput is the script's stdin: nothing, a pipe fed from the request
// body as it arrives (known Content-Length), or the whole body spooled to
// an unlinked temp file first (chunked or HTTP/2 bodies without a
// length: CGI needs CONTENT_LENGTH up front).
type cgiInput struct {
	file   *os.File // the child's stdin: the pipe's read end or the spool; nil = none
	length int64    // CONTENT_LENGTH; 0 = no body
	pw     *os.File // the pipe's write end, fed by feed; nil when spooled
	done   chan struct{}
}

func openCGIInput(r *http.Request) (*cgiInput, error) {
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		return &cgiInput{}, nil
	case r.ContentLength > 0:
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("cgi: stdin pipe: %w", err)
		}
		return &cgiInput{file: pr, length: r.ContentLength, pw: pw}, nil
	}
	f, n, err := spoolBody(r.Body)
	if err != nil {
		return nil, err
	}
	return &cgiInput{file: f, length: n}, nil
}

// spoolBody copies body into a temp file, unlinked at once so the data
// never outlives the descriptor, and rewinds it. The body is already
// capped by client_max_body_size.
func spoolBody(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "tandem-cgi-body-*")
	if err != nil {
		return nil, 0, fmt.Errorf("cgi: spool request body: %w", err)
	}
	_ = os.Remove(f.Name())
	n, err := io.Copy(f, &bodyReader{r: body})
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	return f, n, nil
}

// bodyReader marks read errors as the client's, apart from disk errors.
type bodyReader struct{ r io.Reader }

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &upstream.BodyReadError{Err: err}
	}
	return n, err
}

// feed starts copying body into the pipe once the script runs; the
// child has its own copy of the read end, so the parent's is closed.
func (in *cgiInput) feed(body io.Reader) {
	if in.pw == nil {
		return
	}
	_ = in.file.Close()
	in.file = nil
	in.done = make(chan struct{})
	go func() {
		defer close(in.done)
		_, _ = io.Copy(in.pw, body)
		_ = in.pw.Close()
	}()
}

// close releases the input once the script is gone. A copy still
// running is stopped (closing the pipe fails a pending write; a read
// deadline in the past ends a read waiting on the client) and awaited:
// the request body must not be read after Serve returns.
func (in *cgiInput) close(w http.ResponseWriter) {
	if in.file != nil {
		_ = in.file.Close()
	}
	if in.pw == nil {
		return
	}
	if in.done == nil { // never started
		_ = in.pw.Close()
		return
	}
	select {
	case <-in.done:
		return
	default:
	}
	_ = in.pw.Close()
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	<-in.done
}

// cgiStderr logs a script's stderr, one entry per line.
type cgiStderr struct {
	log     *zap.Logger
	script  string
	buf     []byte
	logged  int // bytes logged so far, up to cgiMaxStderr
	dropped int // bytes past cgiMaxStderr
}

func (e *cgiStderr) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		end := bytes.IndexByte(p, '\n')
		if end < 0 {
			end = len(p)
		}
		take := min(end, cgiMaxStderrLine-len(e.buf))
		e.buf = append(e.buf, p[:take]...)
		p = p[take:]
		switch {
		case len(p) > 0 && p[0] == '\n':
			p = p[1:]
			e.flush()
		case len(e.buf) >= cgiMaxStderrLine:
			e.flush()
		}
	}
	return n, nil
}

// flush logs the pending line, if any.
func (e *cgiStderr) flush() {
	if line := bytes.TrimSuffix(e.buf, []byte("\r")); len(line) > 0 {
		if e.logged < cgiMaxStderr {
			e.logged += len(line)
			e.log.Warn("script stderr", zap.String("script", e.script), zap.ByteString("line", line))
		} else {
			e.dropped += len(line)
		}
	}
	e.buf = e.buf[:0]
}

// finish logs the last partial line, and how much was left out.
func (e *cgiStderr) finish() {
	e.flush()
	if e.dropped > 0 {
		e.log.Warn("script stderr over 64 KiB; the rest was not logged",
			zap.String("script", e.script), zap.Int("bytes_dropped", e.dropped))
	}
}

var _ AppHandler = (*cgiHandler)(nil)
