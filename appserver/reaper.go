package appserver

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// orphanScanInterval is how often the reaper looks for orphans. A zombie
// is reaped only when two scans in a row found it, so it has been waited
// for by nobody for at least this long: every process tandem starts or
// adopts has a goroutine waiting on it from the moment its pid is known,
// and a zombie of its own lasts microseconds.
const orphanScanInterval = 30 * time.Second

// reaper waits for orphans. tandem is a child subreaper (workers forked by
// a zygote are re-parented to it on purpose), so anything an app
// double-forks — a daemonised helper, a subprocess whose parent exited —
// is re-parented to tandem as well and, once it exits, stays a zombie
// unless tandem waits for it. Zombies hold a pid each; left alone they
// pile up until fork fails. gunicorn's arbiter does the same job with
// waitpid(-1) on SIGCHLD; tandem cannot, since that would take exit
// statuses its own waits are owed.
type reaper struct {
	log      *zap.Logger
	self     int
	interval time.Duration
	// seen holds the zombies found by the last scan, with their start
	// times, so a pid reused in between is not mistaken for one seen.
	seen map[int]uint64

	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

func startReaper(log *zap.Logger, interval time.Duration) *reaper {
	r := &reaper{log: log, self: os.Getpid(), interval: interval, seen: map[int]uint64{}, stop: make(chan struct{})}
	r.done.Add(1)
	go r.run()
	return r
}

func (r *reaper) run() {
	defer r.done.Done()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.scan()
		}
	}
}

// close stops the reaper and waits for it; later calls do nothing.
func (r *reaper) close() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.done.Wait()
}

// scan reaps the zombie children that the previous scan found too.
func (r *reaper) scan() {
	zombies, err := zombieChildren(r.self)
	if err != nil {
		r.log.Warn("cannot look for orphaned processes", zap.Error(err))
		return
	}
	next := make(map[int]uint64, len(zombies))
	for _, z := range zombies {
		if start, ok := r.seen[z.pid]; !ok || start != z.start {
			next[z.pid] = z.start
			continue
		}
		var ws unix.WaitStatus
		got, err := unix.Wait4(z.pid, &ws, unix.WNOHANG, nil)
		if err != nil || got != z.pid {
			continue // someone else waited for it after all
		}
		fields := []zap.Field{zap.Int("pid", z.pid), zap.String("command", z.comm)}
		if ws.Signaled() {
			fields = append(fields, zap.String("signal", ws.Signal().String()))
		} else {
			fields = append(fields, zap.Int("exit_code", ws.ExitStatus()))
		}
		r.log.Info("reaped an orphaned process (an app's child whose parent exited)", fields...)
	}
	r.seen = next
}

// zombie is a zombie child found in /proc.
type zombie struct {
	pid   int
	start uint64 // start time in clock ticks after boot
	comm  string
}

// zombieChildren lists the zombies whose parent is ppid.
func zombieChildren(ppid int) ([]zombie, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	var out []zombie
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		if z, ok := parseZombieStat(stat, ppid); ok {
			z.pid = pid
			out = append(out, z)
		}
	}
	return out, nil
}

// parseZombieStat reads /proc/PID/stat ("pid (comm) state ppid ..."; comm
// may hold spaces and parentheses, so fields count from the last ')') and
// reports whether it is a zombie child of ppid.
func parseZombieStat(stat []byte, ppid int) (zombie, bool) {
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return zombie{}, false
	}
	f := bytes.Fields(stat[end+1:])
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22
	// (starttime).
	if len(f) < 20 || string(f[0]) != "Z" || string(f[1]) != strconv.Itoa(ppid) {
		return zombie{}, false
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return zombie{}, false
	}
	return zombie{start: start, comm: string(stat[open+1 : end])}, true
}
