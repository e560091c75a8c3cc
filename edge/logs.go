package edge

import (
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// LogFiles hands out writers for log paths and reopens them all on SIGUSR1,
// so logrotate can move a file away and tandem starts a new one (nginx's
// USR1 contract). One LogFiles is shared by the error log and every access
// log, so two directives naming the same path share one descriptor.
type LogFiles struct {
	mu    sync.Mutex
	files map[string]*reopenFile // guarded by mu
	// alert reports failing log files on standard error, the one place
	// left to say so when a log's own disk is full.
	alert *zap.Logger
}

// NewLogFiles returns an empty set.
func NewLogFiles() *LogFiles {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	alert := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zap.WarnLevel))
	return &LogFiles{files: make(map[string]*reopenFile), alert: alert}
}

// Writer returns a writer for path; "stderr" (or "") is standard error.
// Each call holds the file open until a matching Release.
func (l *LogFiles) Writer(path string) (zapcore.WriteSyncer, error) {
	if path == "" || path == "stderr" {
		return zapcore.Lock(os.Stderr), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.files[path]; ok {
		f.refs++
		return f, nil
	}
	f := &reopenFile{path: path, refs: 1, alert: l.alert}
	if err := f.Reopen(); err != nil {
		return nil, err
	}
	l.files[path] = f
	return f, nil
}

// Release drops one Writer's hold on path and closes the file after the
// last, so a log that a reload removed from the config is not kept open
// (and a rotated file's space is freed).
func (l *LogFiles) Release(path string) {
	if path == "" || path == "stderr" {
		return
	}
	l.mu.Lock()
	f, ok := l.files[path]
	if ok {
		f.refs--
		if f.refs > 0 {
			ok = false
		} else {
			delete(l.files, path)
		}
	}
	l.mu.Unlock()
	if ok {
		_ = f.Close()
	}
}

// Reopen reopens every file; it returns the first error but tries them all,
// because one unwritable directory must not stop the other logs rotating.
func (l *LogFiles) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	for _, f := range l.files {
		if err := f.Reopen(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close closes every file.
func (l *LogFiles) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	for p, f := range l.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
		delete(l.files, p)
	}
	return first
}

// reopenFile is an append-only log file that can be swapped for a fresh
// descriptor while writers keep using it.
type reopenFile struct {
	path  string
	refs  int // Writer calls not yet released; guarded by LogFiles.mu
	alert *zap.Logger
	mu    sync.Mutex
	f     *os.File // guarded by mu

	// Failed writes (a full disk) drop the entry and are reported at most
	// once per failReportEvery, not once per request as zap would; a
	// request is never failed for its log line. Guarded by mu.
	dropped    int
	lastReport time.Time
}

// failReportEvery spaces out the reports of a failing log file.
const failReportEvery = 10 * time.Second

func (r *reopenFile) Reopen() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err) // a *PathError: names the op and file
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

func (r *reopenFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	_, err := r.f.Write(p)
	if err != nil {
		r.dropped++
		if now := time.Now(); now.Sub(r.lastReport) >= failReportEvery {
			r.lastReport = now
			r.alert.Error("cannot write log; entries are dropped until it works again",
				zap.String("log", r.path), zap.Int("dropped", r.dropped), zap.Error(err))
		}
		return len(p), nil
	}
	if r.dropped > 0 {
		r.alert.Warn("log writes work again", zap.String("log", r.path), zap.Int("dropped", r.dropped))
		r.dropped, r.lastReport = 0, time.Time{}
	}
	return len(p), nil
}

func (r *reopenFile) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	return r.f.Sync()
}

func (r *reopenFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// NewErrorLogger builds the error log: human-readable lines with time,
// level and message, at the given level (debug, info, warn, error).
func NewErrorLogger(files *LogFiles, path, level string) (*zap.Logger, error) {
	w, err := files.Writer(path)
	if err != nil {
		return nil, err
	}
	lvl, err := zapcore.ParseLevel(orDefault(level, "info"))
	if err != nil {
		return nil, fmt.Errorf("error log level: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), w, lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(os.Stderr))), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
