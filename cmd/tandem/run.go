package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/appserver"
	"github.com/tandem-server/tandem/conf"
	"github.com/tandem-server/tandem/edge"
	"github.com/tandem-server/tandem/edge/procs"
	"github.com/tandem-server/tandem/static"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "-c FILE | --root DIR --listen ADDR", stdout, stderr)
	path := fs.String("c", "", "config `FILE`")
	root := fs.String("root", "", "quick start: serve `DIR` without a config file")
	listen := fs.String("listen", "127.0.0.1:8080", "quick start: listen `ADDR`ess (with --root)")
	pidPath := fs.String("pid", "", "write the pid to `PIDFILE` instead of the config's pid_file (or the default)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	cfg, err := loadForRun(*path, *root, *listen)
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	if *pidPath != "" {
		cfg.PIDFile = *pidPath
	}
	// Before anything that a re-execution would do twice (timerslack.go).
	if err := adjustTimerSlack(); err != nil {
		fmt.Fprintf(stderr, "tandem: %v (timer slack stays %v)\n", err, currentTimerSlack())
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

// serve runs the app pools and the edge until SIGTERM or SIGINT,
// reloading on SIGHUP, reopening logs on SIGUSR1 and scaling workers on
// SIGTTIN/SIGTTOU. Signals are only queued by the runtime; all work happens
// on this goroutine, one signal at a time (gunicorn's arbiter loop).
func serve(path string, cfg *conf.Config, stderr io.Writer) error {
	logs := edge.NewLogFiles()
	defer logs.Close()
	log, err := edge.NewErrorLogger(logs, cfg.ErrorLog.Path, cfg.ErrorLog.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if err := cfg.CheckPrivileges(os.Geteuid()); err != nil {
		return err
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTTIN, syscall.SIGTTOU)
	defer signal.Stop(sigs)

	pid, err := writePIDFile(cfg.PIDFile)
	if err != nil {
		return err
	}
	defer pid.remove()

	apps, err := startApps(cfg, log)
	if err != nil {
		return err
	}
	files := static.NewCache(static.CacheConfig{})
	defer files.Close()
	// The response cache is one per process, like the file cache: a
	// reload keeps its entries, and its store settings apply at start.
	responses, err := edge.NewCache(cfg.Cache, log)
	if err != nil {
		stopApps(apps, cfg, log)
		return err
	}
	defer responses.Close()
	srv, err := edge.New(cfg, edge.Options{Log: log, Logs: logs, FileCache: files, Cache: responses, Apps: appLookup(apps)})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		stopApps(apps, cfg, log)
		return err
	}
	log.Info("tandem started", zap.String("version", version), zap.Int("pid", os.Getpid()), zap.Strings("addrs", srv.Addrs()),
		zap.Duration("timer_slack", currentTimerSlack()))
	go warnUnresolvedHosts(cfg, log)
	if procs.Enabled() {
		ctx, stopGovernor := context.WithCancel(context.Background())
		defer stopGovernor()
		go (&procs.Governor{Log: log, AppWaits: apps.Waits}).Run(ctx)
	}

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			cfg = reload(path, cfg, srv, apps, log)
		case syscall.SIGUSR1:
			if err := logs.Reopen(); err != nil {
				log.Error("reopen logs", zap.Error(err))
			} else {
				log.Info("log files reopened")
			}
		case syscall.SIGTTIN, syscall.SIGTTOU:
			scaleApps(apps, cfg, sig == syscall.SIGTTIN)
		default:
			// The pools stop when the edge has drained or, for each app,
			// when its graceful_timeout since the signal is up, so a hung
			// request cannot hold the process for shutdown_timeout.
			signaled, drained := time.Now(), make(chan struct{})
			appsDone := make(chan error, 1)
			go func() { appsDone <- apps.ShutdownWhenDrained(signaled, drained) }()
			shutdown(srv, cfg, log, sig)
			close(drained)
			if err := <-appsDone; err != nil {
				log.Warn("app workers did not all stop in time; killed", zap.Error(err))
			}
			return nil
		}
	}
	return nil
}

// startApps boots every app block and waits until its workers are ready;
// an import error comes back with the Python traceback.
func startApps(cfg *conf.Config, log *zap.Logger) (*appserver.Manager, error) {
	m, err := appserver.NewManager(cfg.Apps, appserver.Options{Log: log})
	if err != nil {
		return nil, err
	}
	if len(cfg.Apps) == 0 {
		return m, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), appBootTimeout)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		_ = m.Shutdown(context.Background())
		return nil, fmt.Errorf("start apps: %w", err)
	}
	return m, nil
}

// appBootTimeout bounds how long the apps may take to import and start
// their workers (Django projects can take seconds).
const appBootTimeout = 2 * time.Minute

func appLookup(m *appserver.Manager) func(string) (edge.AppHandler, bool) {
	return func(name string) (edge.AppHandler, bool) {
		p := m.Pool(name)
		if p == nil {
			return nil, false
		}
		return p, true
	}
}

func scaleApps(m *appserver.Manager, cfg *conf.Config, up bool) {
	for _, a := range cfg.Apps {
		if up {
			m.ScaleUp(a.Name)
		} else {
			m.ScaleDown(a.Name)
		}
	}
}

func stopApps(m *appserver.Manager, cfg *conf.Config, log *zap.Logger) {
	grace := cfg.ShutdownTimeout
	for _, a := range cfg.Apps {
		grace = max(grace, a.GracefulTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		log.Warn("app workers did not all stop in time; killed", zap.Error(err))
	}
}

// reload re-reads the config; an invalid one is logged error by error and
// the running config keeps serving. Apps reload first (a new generation
// takes over only once it has imported the new code), then the edge.
func reload(path string, cur *conf.Config, srv *edge.Server, apps *appserver.Manager, log *zap.Logger) *conf.Config {
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
	ctx, cancel := context.WithTimeout(context.Background(), appBootTimeout)
	defer cancel()
	if err := apps.Reload(ctx, next.Apps); err != nil {
		log.Error("app reload failed; apps that could not start keep their previous code", zap.Error(err))
	}
	if err := srv.Reload(next); err != nil {
		log.Error("reload failed; still serving the previous config", zap.Error(err))
		return cur
	}
	if !cur.Cache.Equal(next.Cache) {
		log.Warn("the top-level cache block changed; its settings apply after a restart (the cache keeps its entries and current settings)")
	}
	log.Info("reloaded", zap.Strings("addrs", srv.Addrs()))
	go warnUnresolvedHosts(next, log)
	return next
}

func shutdown(srv *edge.Server, cfg *conf.Config, log *zap.Logger, sig os.Signal) {
	log.Info("stopping: draining in-flight requests", zap.Stringer("signal", sig), zap.Duration("grace", cfg.ShutdownTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("grace period over; closed remaining connections", zap.Error(err))
		return
	}
	log.Info("stopped")
}
