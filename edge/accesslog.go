package edge

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// accessLog writes one line per request in nginx "combined" format or as
// JSON, through zap so both formats share buffering and reopen handling.
type accessLog struct {
	log  *zap.Logger
	json bool
	path string // held open in LogFiles until the router is closed
}

func newAccessLog(files *LogFiles, path, format string) (*accessLog, error) {
	w, err := files.Writer(path)
	if err != nil {
		return nil, err
	}
	if format == "json" {
		enc := zapcore.EncoderConfig{
			TimeKey:     "time",
			EncodeTime:  zapcore.ISO8601TimeEncoder,
			LineEnding:  zapcore.DefaultLineEnding,
			MessageKey:  "", // the fields say it all
			EncodeLevel: nil,
		}
		core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), w, zapcore.InfoLevel)
		return &accessLog{log: zap.New(core), json: true, path: path}, nil
	}
	// Only the message: the combined line is built by hand so it matches
	// nginx byte for byte and existing log parsers keep working.
	enc := zapcore.EncoderConfig{MessageKey: "m", LineEnding: zapcore.DefaultLineEnding}
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), w, zapcore.InfoLevel)
	return &accessLog{log: zap.New(core), path: path}, nil
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (a *accessLog) record(r *http.Request, rec *recorder, start time.Time) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a.json {
		a.log.Info("",
			zap.String("remote_addr", host),
			zap.String("host", r.Host),
			zap.String("method", r.Method),
			zap.String("uri", r.RequestURI),
			zap.String("proto", r.Proto),
			zap.Int("status", rec.status),
			zap.Int64("bytes", rec.bytes),
			zap.String("referer", r.Referer()),
			zap.String("user_agent", r.UserAgent()),
			zap.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		)
		return
	}
	bp := linePool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, host...)
	b = append(b, " - "...)
	user := "-"
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		user = u
	}
	b = append(b, user...)
	b = append(b, " ["...)
	b = start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendEscaped(b, r.Method+" "+r.RequestURI+" "+r.Proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, rec.bytes, 10)
	b = append(b, " \""...)
	b = appendEscaped(b, orDefault(r.Referer(), "-"))
	b = append(b, "\" \""...)
	b = appendEscaped(b, orDefault(r.UserAgent(), "-"))
	b = append(b, '"')
	a.log.Info(string(b))
	*bp = b
	linePool.Put(bp)
}

// appendEscaped escapes quotes, backslashes and control bytes the way nginx
// does (\xHH), so a crafted User-Agent cannot forge a log line.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// recorder remembers the status and body size for the access log. It
// forwards ReadFrom so large files still go out through sendfile.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection for deadlines.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var (
	_ io.ReaderFrom = (*recorder)(nil)
	_ http.Flusher  = (*recorder)(nil)
)
