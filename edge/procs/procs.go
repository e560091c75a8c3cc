// Package procs keeps the Go scheduler on as few processors (GOMAXPROCS)
// as tandem's load needs, growing the count when the processors it has are
// busy and trying one fewer when they are not.
//
// Why not one processor per core, as Go does by default: on the small VMs
// tandem is deployed to, the cores are shared with the Python workers it
// feeds. A Go process whose processors are half idle pays for that idleness
// on every request: each goroutine made runnable (a socket becoming
// readable, a response finished) wakes a second thread to look for work,
// which mostly finds none and goes back to sleep, and the runtime's monitor
// thread is woken out of its sleep by the next system call. Each of those
// is a context switch, and under a hypervisor a costly one. Proxying to
// gunicorn on 2 cores, tandem with two processors spent ~300 µs of CPU per
// request in 5–6 context switches; with one, ~160 µs in 1–2, and served
// 1.3–1.6× the requests (docs/benchmarks.md, "Processors").
//
// What one processor cannot do is run more than one core's worth of Go, so
// the count follows the load: sampled every Interval from the process's
// CPU time, a process using nearly all of its processors gets twice as many
// (up to the starting GOMAXPROCS); a process that is not gets one fewer
// after a few calm samples, kept if the fewer are not saturated and given
// back at once if they are, with the next attempt put off longer each time
// one fails. Setting GOMAXPROCS in the environment turns the governor off.
package procs

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Defaults for Governor.
const (
	DefaultInterval = 500 * time.Millisecond
	// saturated is the share of its processors a process must use, in CPU
	// time, to count as needing more. Below 1 because CPU time is not
	// processor time: a processor whose thread waits for a core shows as
	// less than fully used.
	saturated = 0.9
	// calmSamples unsaturated samples in a row come before a try with one
	// processor fewer.
	calmSamples = 2
	// firstWait and maxWait bound the samples between tries: a failed try
	// doubles the wait, a kept one resets it.
	firstWait = 4
	maxWait   = 128
)

// Governor adjusts runtime.GOMAXPROCS to the process's CPU use.
type Governor struct {
	// Max is the most processors it will use; 0 means GOMAXPROCS as the
	// runtime set it at start (cores, or the cgroup CPU limit).
	Max      int
	Interval time.Duration
	Log      *zap.Logger

	cpuTime func() (time.Duration, error) // process CPU time so far
	set     func(int)                     // runtime.GOMAXPROCS
}

// Enabled says whether a Governor should run in this process: not when the
// operator set GOMAXPROCS, and not on one core.
func Enabled() bool {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return false
	}
	return runtime.GOMAXPROCS(0) > 1
}

// Run samples the process's CPU use until ctx ends, adjusting GOMAXPROCS.
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
	cpuTime, set := g.cpuTime, g.set
	if cpuTime == nil {
		cpuTime = processCPU
	}
	if set == nil {
		set = func(n int) { runtime.GOMAXPROCS(n) }
	}
	max := g.Max
	if max <= 0 {
		max = runtime.GOMAXPROCS(0)
	}
	if max < 2 {
		return
	}
	p := newPolicy(max)
	defer set(max)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	lastCPU, err := cpuTime()
	if err != nil {
		log.Warn("processor governor off: cannot read CPU time", zap.Error(err))
		return
	}
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			cpu, err := cpuTime()
			if err != nil {
				log.Warn("processor governor off: cannot read CPU time", zap.Error(err))
				return
			}
			wall := now.Sub(last)
			if wall <= 0 {
				continue
			}
			busy := float64(cpu-lastCPU) / float64(wall)
			lastCPU, last = cpu, now
			before := p.procs
			if n := p.next(busy); n != before {
				set(n)
				log.Debug("processors", zap.Int("from", before), zap.Int("to", n), zap.Float64("cores_used", busy))
			}
		}
	}
}

// processCPU is the user and system CPU time of every thread of the process.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// policy is the governor's decision, apart from clocks and the runtime so
// that tests can feed it samples.
type policy struct {
	procs, max int
	calm       int  // unsaturated samples in a row
	trying     bool // procs was lowered by one on the last sample
	wait       int  // samples left before the next try
	backoff    int  // wait after the next failed try
}

func newPolicy(max int) *policy {
	return &policy{procs: max, max: max, wait: firstWait, backoff: firstWait}
}

// next takes the cores used over the last sample and returns the
// processor count for the next one.
func (p *policy) next(busy float64) int {
	if p.wait > 0 {
		p.wait--
	}
	if busy >= saturated*float64(p.procs) {
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
