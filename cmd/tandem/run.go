package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge"
	"github.com/tandem-server/tandem/static"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "-c FILE | --root DIR --listen ADDR", stdout, stderr)
	path := fs.String("c", "", "config `FILE`")
	root := fs.String("root", "", "quick start: serve `DIR` without a config file")
	listen := fs.String("listen", "127.0.0.1:8080", "quick start: listen `ADDR`ess (with --root)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	cfg, err := loadForRun(*path, *root, *listen)
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	if err := serve(*path, cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "tandem: %v\n", err)
		return 1
	}
	return 0
}

func loadForRun(path, root, listen string) (*conf.Config, error) {
	switch {
	case path != "" && root != "":
		return nil, errors.New("use either -c FILE or --root DIR, not both")
	case path != "":
		return conf.Load(path)
	case root != "":
		return conf.QuickStart(root, listen)
	default:
		return nil, errors.New("nothing to serve: give -c FILE, or --root DIR [--listen ADDR]")
	}
}

// serve runs the edge until SIGTERM or SIGINT, reloading on SIGHUP and
// reopening logs on SIGUSR1. Signals are only queued by the runtime; all
// work happens on this goroutine, one signal at a time.
func serve(path string, cfg *conf.Config, stderr io.Writer) error {
	logs := edge.NewLogFiles()
	defer logs.Close()
	log, err := edge.NewErrorLogger(logs, cfg.ErrorLog.Path, cfg.ErrorLog.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	pid, err := writePIDFile(cfg.PIDFile)
	if err != nil {
		return err
	}
	defer pid.remove()

	files := static.NewCache(static.CacheConfig{})
	defer files.Close()
	srv, err := edge.New(cfg, edge.Options{Log: log, Logs: logs, FileCache: files})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	log.Info("tandem started", zap.String("version", version), zap.Int("pid", os.Getpid()), zap.Strings("addrs", srv.Addrs()))

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			cfg = reload(path, cfg, srv, log)
		case syscall.SIGUSR1:
			if err := logs.Reopen(); err != nil {
				log.Error("reopen logs", zap.Error(err))
			} else {
				log.Info("log files reopened")
			}
		default:
			return shutdown(srv, cfg, log, sig)
		}
	}
	return nil
}

// reload re-reads the config; an invalid one is logged error by error and
// the running config keeps serving.
func reload(path string, cur *conf.Config, srv *edge.Server, log *zap.Logger) *conf.Config {
	if path == "" {
		log.Warn("reload ignored: running without a config file (--root)")
		return cur
	}
	log.Info("reloading", zap.String("config", path))
	next, err := conf.Load(path)
	if err != nil {
		var list conf.Errors
		if errors.As(err, &list) {
			for _, e := range list {
				log.Error("config error; still serving the previous config", zap.String("error", e.Error()))
			}
		} else {
			log.Error("reload failed; still serving the previous config", zap.Error(err))
		}
		return cur
	}
	if err := srv.Reload(next); err != nil {
		log.Error("reload failed; still serving the previous config", zap.Error(err))
		return cur
	}
	log.Info("reloaded", zap.Strings("addrs", srv.Addrs()))
	return next
}

func shutdown(srv *edge.Server, cfg *conf.Config, log *zap.Logger, sig os.Signal) error {
	log.Info("stopping: draining in-flight requests", zap.Stringer("signal", sig), zap.Duration("grace", cfg.ShutdownTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("grace period over; closed remaining connections", zap.Error(err))
		return nil
	}
	log.Info("stopped")
	return nil
}
