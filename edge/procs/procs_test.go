package procs

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// feed gives the policy one busy figure per sample and returns the
// processor count after each.
func feed(p *policy, busy ...float64) []int {
	out := make([]int, len(busy))
	for i, b := range busy {
		out[i] = p.next(sample{cpu: b})
	}
	return out
}

func repeat(b float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = b
	}
	return s
}

func TestPolicy_IdleShedsOneAtATime(t *testing.T) {
	p := newPolicy(4)
	got := feed(p, repeat(0.01, 14)...)
	// The first try comes once the starting wait is over; the sample that
	// keeps a try starts the wait again, so the next comes after it.
	want := []int{4, 4, 4, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 1}
	if !slices.Equal(got, want) {
		t.Fatalf("processors per sample = %v, want %v", got, want)
	}
	if got := feed(p, repeat(0.01, 20)...); got[len(got)-1] != 1 {
		t.Fatalf("went below one processor or back up: %v", got)
	}
}

func TestPolicy_SaturatedDoublesUpToMax(t *testing.T) {
	p := newPolicy(6)
	p.procs = 1
	got := feed(p, 0.95, 1.9, 3.8)
	if want := []int{2, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("processors per sample = %v, want %v", got, want)
	}
	if got := p.next(sample{cpu: 5.9}); got != 6 {
		t.Fatalf("saturated at max: %d processors, want 6", got)
	}
}

func TestPolicy_FailedTryBacksUpAndWaitsLonger(t *testing.T) {
	p := newPolicy(2)
	// A load that needs more than one processor but not two: calm at 2,
	// saturated at 1. Record the samples spent at 1 and the gaps between.
	var tries []int
	for i := 0; i < 600; i++ {
		busy := 1.2
		if p.procs == 1 {
			busy = 1.0
		}
		before := p.procs
		p.next(sample{cpu: busy})
		if before == 2 && p.procs == 1 {
			tries = append(tries, i)
		}
		if before == 1 && p.procs != 2 {
			t.Fatalf("sample %d: stayed at one saturated processor", i)
		}
	}
	if len(tries) < 4 {
		t.Fatalf("tries at samples %v: want at least 4 in 600 samples", tries)
	}
	for i := 2; i < len(tries); i++ {
		gap, prev := tries[i]-tries[i-1], tries[i-1]-tries[i-2]
		if gap < prev || gap > maxWait+calmSamples+1 {
			t.Fatalf("gaps between tries %v: want growing, at most %d", tries, maxWait+calmSamples+1)
		}
	}
	last := tries[len(tries)-1] - tries[len(tries)-2]
	if last < maxWait {
		t.Fatalf("gaps between tries %v never reached the %d-sample cap", tries, maxWait)
	}
}

func TestPolicy_KeptTryResetsBackoff(t *testing.T) {
	p := newPolicy(2)
	p.backoff, p.wait = maxWait, 0
	p.calm = calmSamples
	if got := p.next(sample{cpu: 0.5}); got != 1 {
		t.Fatalf("calm at 2 with no wait left: %d processors, want a try at 1", got)
	}
	if got := p.next(sample{cpu: 0.5}); got != 1 {
		t.Fatalf("calm at 1: %d processors, want to keep 1", got)
	}
	if p.backoff != firstWait {
		t.Fatalf("backoff after a kept try = %d, want %d", p.backoff, firstWait)
	}
}

func TestPolicy_SpikeDuringTryIsNotMistakenForGrowth(t *testing.T) {
	p := newPolicy(8)
	p.procs, p.wait, p.calm = 4, 0, calmSamples
	if got := p.next(sample{cpu: 1}); got != 3 {
		t.Fatalf("try: %d processors, want 3", got)
	}
	// Saturated during the try: back to where it was, not doubled.
	if got := p.next(sample{cpu: 3}); got != 4 {
		t.Fatalf("failed try: %d processors, want 4", got)
	}
}

func TestRun_ShedsWhenIdleAndRestoresOnStop(t *testing.T) {
	var cpu atomic.Int64 // the process uses no CPU
	sets := make(chan int, 64)
	g := &Governor{
		Max:      3,
		Interval: time.Millisecond,
		read:     func() (usage, error) { return usage{cpu: time.Duration(cpu.Load())}, nil },
		set:      func(n int) { sets <- n },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()

	deadline := time.After(10 * time.Second)
	for want := 2; want >= 1; want-- {
		select {
		case n := <-sets:
			if n != want {
				t.Fatalf("set(%d), want set(%d)", n, want)
			}
		case <-deadline:
			t.Fatalf("no set(%d) within 10s", want)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	var last int
	for len(sets) > 0 {
		last = <-sets
	}
	if last != 3 {
		t.Fatalf("last set(%d) after stop, want set(3): the runtime's own count back", last)
	}
}

func TestRun_StopsWhenCPUTimeUnreadable(t *testing.T) {
	g := &Governor{
		Max:      2,
		Interval: time.Millisecond,
		read:     func() (usage, error) { return usage{}, errors.New("no rusage") },
		set:      func(int) {},
	}
	done := make(chan struct{})
	go func() { g.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going without CPU time")
	}
}

func TestProcessUsage_CPUGrows(t *testing.T) {
	before, err := processUsage()
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the process's CPU time moves, bounded by a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		x := 0
		for i := 0; i < 1_000_000; i++ {
			x += i
		}
		_ = x
		after, err := processUsage()
		if err != nil {
			t.Fatal(err)
		}
		if after.cpu > before.cpu {
			return
		}
	}
	t.Fatal("process CPU time did not grow while spinning")
}

func TestNeedsMore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		procs int
		s     sample
		want  bool
	}{
		{"idle", 1, sample{cpu: 0.1}, false},
		{"busy processor", 1, sample{cpu: 0.95}, true},
		{"busy, workers bound too", 1, sample{cpu: 0.95, workersBound: true}, true},
		{"threads wait for a core", 1, sample{cpu: 0.7, wait: 0.9}, true},
		{"threads wait, but the workers bound the rate", 1, sample{cpu: 0.7, wait: 0.9, workersBound: true}, false},
		{"short waits", 1, sample{cpu: 0.8, wait: 0.25}, false},
		{"two processors, half busy", 2, sample{cpu: 1.0, wait: 0.6}, false},
		{"two processors, threads wait", 2, sample{cpu: 1.0, wait: 1.2}, true},
	} {
		if got := needsMore(tc.procs, tc.s); got != tc.want {
			t.Errorf("%s: needsMore(%d, %+v) = %v, want %v", tc.name, tc.procs, tc.s, got, tc.want)
		}
	}
}

func TestSchedWait(t *testing.T) {
	for line, want := range map[string]time.Duration{
		"1234 5678 9\n": 5678,
		"1234 0 9\n":    0,
		"1234\n":        0,
		"a b c\n":       0,
		"1 -5 2\n":      0,
		"":              0,
	} {
		if got := schedWait([]byte(line)); got != want {
			t.Errorf("schedWait(%q) = %d, want %d", line, got, want)
		}
	}
}

// runFake runs a Governor at a 1 ms interval over a process that, in every
// sample (a second on the governor's clock), uses cpu cores and waits for
// wait cores; queued says whether its app requests all queue. It returns
// the processor counts set, in order, once want of them were set or the
// bound passed.
func runFake(t *testing.T, cpu, wait float64, queued bool, want int, bound time.Duration) []int {
	t.Helper()
	var samples atomic.Int64 // reads so far; the clock is one second per read
	var asked atomic.Uint64
	sets := make(chan int, 1024)
	g := &Governor{
		Max:      2,
		Interval: time.Millisecond,
		read: func() (usage, error) {
			n := float64(samples.Add(1))
			return usage{cpu: time.Duration(cpu * n * float64(time.Second)), wait: time.Duration(wait * n * float64(time.Second))}, nil
		},
		clock: func() time.Time { return time.Unix(samples.Load(), 0) },
		AppWaits: func() (uint64, uint64) {
			n := asked.Add(10)
			if queued {
				return n, n
			}
			return n, 0
		},
		set: func(n int) { sets <- n },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Run(ctx)
	var got []int
	deadline := time.After(bound)
	for len(got) < want {
		select {
		case n := <-sets:
			got = append(got, n)
		case <-deadline:
			return got
		}
	}
	return got
}

func TestRun_ThreadsWaitingForACoreGetTheSecondProcessorBack(t *testing.T) {
	// One processor: its thread waits as long as it runs; the app
	// requests find free workers. The try at one fails and is undone.
	got := runFake(t, 0.3, 0.7, false, 2, 10*time.Second)
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("processors set %v, want [1 2]", got)
	}
}

func TestRun_WorkersBoundKeepOneProcessor(t *testing.T) {
	// The same waits, but the app requests queue for workers: one
	// processor is kept however long the wait.
	// 500 samples or so: the try at one comes after a few, and is kept.
	got := runFake(t, 0.3, 0.7, true, 2, 500*time.Millisecond)
	if !slices.Equal(got, []int{1}) {
		t.Fatalf("processors set %v with workers bound, want only [1]", got)
	}
}

func TestEnabled_OffWhenGOMAXPROCSIsSet(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	if Enabled() {
		t.Fatal("Enabled() with GOMAXPROCS set in the environment")
	}
}
