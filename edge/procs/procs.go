// Package procs keeps the Go scheduler on as few processors (GOMAXPROCS)
// as tandem's load needs, growing the count when the processors it has
// are not enough and trying one fewer when they are more than enough.
//
// Why not one processor per core, as Go does by default: on the small VMs
// tandem is deployed to, the cores are shared with the Python workers it
// feeds. A Go process whose processors are half idle pays for that
// idleness on every request: each goroutine made runnable (a socket
// becoming readable, a response finished) wakes a second thread to look
// for work, which mostly finds none and goes back to sleep, and the
// runtime's monitor thread is woken out of its sleep by the next system
// call. Each of those is a context switch, and under a hypervisor a costly
// one. In front of four hello-world Python workers on 2 cores, tandem's
// Go side spent 74–102 µs of CPU per request with two processors and
// 50–64 µs with one, and served more requests (docs/benchmarks.md,
// "Processors").
//
// When one processor is not enough: when the process uses nearly all of
// its processors' time (a static-file load), or when its threads spend
// much of their time runnable but waiting for a core, while the
// requests for app workers mostly find one free. The second case is a
// machine shared with processes tandem feeds, such as a gunicorn it
// proxies to; a thread more gives tandem a larger share of the cores,
// and with tandem the slower half of the pipeline, more requests get
// through. Where the app workers are what requests wait for, their cores
// are better left to them.
//
// The count is sampled every Interval. A process that needs more gets
// twice as many processors (up to the starting GOMAXPROCS); one that does
// not gets one fewer after a few calm samples, kept if the fewer are
// enough and given back at once if not, the next try then put off twice
// as long. Setting GOMAXPROCS in the environment turns the governor off.
package procs

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Defaults and thresholds.
const (
	DefaultInterval = 500 * time.Millisecond
	// busyShare is the share of its processors' time a process must use,
	// in CPU time, to need more. Below 1 because CPU time is not
	// processor time: a processor whose thread waits for a core shows as
	// less than fully used.
	busyShare = 0.9
	// waitShare is how much of each processor's time its threads may
	// spend runnable but waiting for a core before the process needs
	// more. Measured on 2 cores with one processor: 0.23–0.26 in front of
	// tandem's own hello-world workers, 0.85–1.1 proxying to gunicorn.
	waitShare = 0.5
	// queuedShare: when at least this share of app requests queued for a
	// worker, the workers bound the rate and waiting for a core is not a
	// reason for more processors.
	queuedShare = 0.5
	// calmSamples samples in a row that need no more come before a try
	// with one processor fewer.
	calmSamples = 2
	// firstWait and maxWait bound the samples between tries: a failed try
	// doubles the wait, a kept one resets it.
	firstWait = 4
	maxWait   = 128
)

// Governor adjusts runtime.GOMAXPROCS to the process's load.
type Governor struct {
	// Max is the most processors it will use; 0 means GOMAXPROCS as the
	// runtime set it at start (cores, or the cgroup CPU limit).
	Max      int
	Interval time.Duration
	Log      *zap.Logger
	// AppWaits, if set, returns counts that only grow: requests that asked
	// for an app worker, and those of them that queued for one
	// (appserver.Manager.Waits).
	AppWaits func() (asked, queued uint64)

	read  func() (usage, error) // the process's CPU use so far
	set   func(int)             // runtime.GOMAXPROCS
	clock func() time.Time      // time.Now
}

// usage is what the process has used so far.
type usage struct {
	cpu  time.Duration // on a core, all threads
	wait time.Duration // runnable, waiting for a core, all live threads
}

// Enabled says whether a Governor should run in this process: not when the
// operator set GOMAXPROCS, and not on one core.
func Enabled() bool {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return false
	}
	return runtime.GOMAXPROCS(0) > 1
}

// Run samples the process's load until ctx ends, adjusting GOMAXPROCS.
// It returns with GOMAXPROCS back at Max.
func (g *Governor) Run(ctx context.Context) {
	interval := g.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	log := g.Log
	if log == nil {
		log = zap.NewNop()
	}
	read, set, clock := g.read, g.set, g.clock
	if clock == nil {
		clock = time.Now
	}
	if read == nil {
		read = processUsage
	}
	if set == nil {
		set = func(n int) { runtime.GOMAXPROCS(n) }
	}
	appWaits := g.AppWaits
	if appWaits == nil {
		appWaits = func() (uint64, uint64) { return 0, 0 }
	}
	ceiling := g.Max
	if ceiling <= 0 {
		ceiling = runtime.GOMAXPROCS(0)
	}
	if ceiling < 2 {
		return
	}
	p := newPolicy(ceiling)
	defer set(ceiling)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	last, err := read()
	if err != nil {
		log.Warn("processor governor off: cannot read the process's CPU use", zap.Error(err))
		return
	}
	lastAt := clock()
	lastAsked, lastQueued := appWaits()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			u, err := read()
			if err != nil {
				log.Warn("processor governor off: cannot read the process's CPU use", zap.Error(err))
				return
			}
			now := clock() // when read, not when ticked: a late tick would inflate the shares
			asked, queued := appWaits()
			wall := now.Sub(lastAt)
			if wall <= 0 {
				continue
			}
			s := sample{
				cpu:  float64(u.cpu-last.cpu) / float64(wall),
				wait: max(0, float64(u.wait-last.wait)/float64(wall)), // a thread that exited takes its wait along
			}
			if asked > lastAsked && queued >= lastQueued {
				s.workersBound = float64(queued-lastQueued) >= queuedShare*float64(asked-lastAsked)
			}
			last, lastAt, lastAsked, lastQueued = u, now, asked, queued
			before := p.procs
			if n := p.next(s); n != before {
				set(n)
				log.Debug("processors", zap.Int("from", before), zap.Int("to", n),
					zap.Float64("cores_used", s.cpu), zap.Float64("cores_waited_for", s.wait), zap.Bool("app_workers_bound", s.workersBound))
			}
		}
	}
}

// processUsage reads the process's CPU time (getrusage) and the time its
// live threads spent waiting for a core (/proc/self/task/*/schedstat,
// second field). Without /proc the wait reads as zero.
func processUsage() (usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, err
	}
	u := usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return u, nil
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited
		}
		u.wait += schedWait(b)
	}
	return u, nil
}

// schedWait is the run-queue wait in a schedstat line: "ON_CPU_NS WAIT_NS SLICES".
func schedWait(line []byte) time.Duration {
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0
	}
	ns, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil || ns < 0 {
		return 0
	}
	return time.Duration(ns)
}

// sample is one interval's load, in cores (seconds per second).
type sample struct {
	cpu          float64 // used
	wait         float64 // waited for, runnable
	workersBound bool    // most app requests queued for a worker
}

// needsMore reports whether procs processors are too few for s.
func needsMore(procs int, s sample) bool {
	n := float64(procs)
	return s.cpu >= busyShare*n || (s.wait >= waitShare*n && !s.workersBound)
}

// policy is the governor's decision, apart from clocks and the runtime so
// that tests can feed it samples.
type policy struct {
	procs, max int
	calm       int  // samples in a row that needed no more
	trying     bool // procs was lowered by one on the last sample
	wait       int  // samples left before the next try
	backoff    int  // wait after the next failed try
}

func newPolicy(ceiling int) *policy {
	return &policy{procs: ceiling, max: ceiling, wait: firstWait, backoff: firstWait}
}

// next takes the last sample and returns the processor count for the
// next one.
func (p *policy) next(s sample) int {
	if p.wait > 0 {
		p.wait--
	}
	if needsMore(p.procs, s) {
		p.calm = 0
		if p.trying {
			// One fewer was not enough: back up, and try again later.
			p.trying = false
			p.procs++
			p.backoff = min(2*p.backoff, maxWait)
			p.wait = p.backoff
			return p.procs
		}
		if p.procs < p.max {
			p.procs = min(2*p.procs, p.max)
			p.wait = max(p.wait, firstWait)
		}
		return p.procs
	}
	if p.trying {
		p.trying = false
		p.backoff = firstWait
		p.wait = firstWait
	}
	p.calm++
	if p.procs > 1 && p.calm >= calmSamples && p.wait == 0 {
		p.procs--
		p.trying = true
		p.calm = 0
	}
	return p.procs
}
