package appserver

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/tandem-server/tandem/appserver/wire"
)

// State is where a worker is in its life. It changes only under the
// arbiter's mu, through setState, which consults the transition table
// next: on the arbiter goroutine, or on a request goroutine making the
// hand-off moves Idle → Busy and Busy → Idle (handoff.go).
type State uint8

const (
	// Starting: spawned, its R (ready) frame not yet received.
	// Exits: Idle when R arrives; Exited when the spawn fails.
	Starting State = iota
	// Idle: ready, no request in flight; on the idle list (a command
	// worker: the ready list; for a generation not yet switched to, on
	// neither until the switch). Exits: Busy when dispatched; Draining
	// when retired (scale-down, recycling, reload, shutdown); Exited when
	// the process dies.
	Idle
	// Busy: serving requests: exactly one for a Python worker, one or
	// more for a command worker (see inflight). Exits: Idle when the
	// (last) request ends; Draining when marked for retirement (it retires
	// as soon as its requests end) or when a request broke; Exited is not
	// direct: a busy worker that dies is first marked Draining, because
	// request goroutines still hold it.
	Busy
	// Draining: will never be dispatched again; it gets SIGTERM once it is
	// not serving a request, SIGKILL past its deadline. Exits: Exited once
	// the process has been reaped and no request holds it.
	Draining
	// Exited: reaped and logged; removed from the table. No exits.
	Exited
)

// next is the one table of legal moves; String and the table test read it
// too, so a state cannot be added without deciding its exits.
var next = map[State][]State{
	Starting: {Idle, Exited},
	Idle:     {Busy, Draining, Exited},
	Busy:     {Idle, Draining},
	Draining: {Exited},
	Exited:   nil,
}

var stateNames = map[State]string{
	Starting: "starting", Idle: "idle", Busy: "busy", Draining: "draining", Exited: "exited",
}

func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("State(%d)", s)
}

// canMove reports whether from → to is in the table.
func canMove(from, to State) bool {
	for _, s := range next[from] {
		if s == to {
			return true
		}
	}
	return false
}

// worker is one worker process in the arbiter's table.
//
// Ownership: every field except conn, snd, rd, wr, stream, next, sending and timedOut is
// touched only under the arbiter's mu: by the arbiter goroutine, or by the
// hand-off fast path (handoff.go), which only leases and gives back. While
// a Python worker is leased for a request (inflight == 1), the request
// goroutine alone uses conn, snd, rd and wr; the lease and release,
// made under mu, order the accesses. A request pipelined behind it
// (pipeline.go) touches only next (to take its message back), which is
// safe for concurrent use, until its turn. timedOut is atomic because the
// arbiter sets it while a request goroutine may read it. A command worker
// (http != nil) has no conn: any number of request goroutines use its
// backend at once, which is safe for concurrent use.
type worker struct {
	id    int
	gen   *generation
	state State
	pid   int
	proc  process

	// Request-goroutine side (see Ownership).
	conn   *net.UnixConn
	snd    *sender // writes requests over conn's RawConn; made on first use
	rd     *wire.Reader
	wr     *wire.Writer
	stream atomic.Uint32 // the last request's stream number
	// next carries a request pipelined behind the current one
	// (pipeline.go); nil if the worker did not offer one.
	next *nextQueue
	// sending is set from a lease until the request is all written to
	// conn; nothing is pipelined behind it meanwhile, so the worker never
	// meets a queued request before the one it follows. Set under mu,
	// cleared by the request goroutine.
	sending atomic.Bool

	// http is a command worker's HTTP endpoint; nil for a Python worker.
	http *backend

	inflight int       // requests holding it (Busy, or Draining before release); ≤ 2 for Python (with behind)
	behind   *waiter   // a Python worker's request pipelined behind the current one, or nil
	leasedAt time.Time // when the latest request was dispatched
	readyAt  time.Time // when R arrived
	idleAt   time.Time // when it last became idle, for idle shrinking
	requests int       // requests served

	maxRequests int       // max_requests with this worker's jitter; 0 = never
	retireAt    time.Time // max_lifetime with jitter; zero = never
	rss         int64     // last sampled resident set, bytes

	reason    ExitReason // why the arbiter retired it; Crash when it just died
	recycling bool       // retired by a recycling limit (only one at a time)
	termSent  bool       // SIGTERM sent
	killAt    time.Time  // SIGKILL deadline once retiring; zero = none
	killed    bool       // SIGKILL sent
	timedOut  atomic.Bool
	exit      *exitStatus // set once reaped
}

// setState moves the worker, refusing moves the table does not list: an
// illegal move is a bug in the arbiter, and silently dropping it is how
// pools lose workers forever.
func (w *worker) setState(to State) error {
	if !canMove(w.state, to) {
		return fmt.Errorf("worker %d: illegal transition %s → %s", w.id, w.state, to)
	}
	w.state = to
	return nil
}

// nextStream numbers a request on the worker: in the order they are
// written to it, skipping 0. Safe for concurrent use.
func (w *worker) nextStream() uint32 {
	s := w.stream.Add(1)
	if s == 0 {
		s = w.stream.Add(1)
	}
	return s
}

// leased reports whether a request goroutine holds the worker.
func (w *worker) leased() bool { return w.inflight > 0 }

// live reports whether the worker counts toward the pool's size: it is or
// will soon be able to serve.
func (w *worker) live() bool {
	return w.state == Starting || w.state == Idle || w.state == Busy
}
