package appserver

import (
	"strings"
	"testing"
)

var allStates = []State{Starting, Idle, Busy, Draining, Exited}

// TestState_TransitionTable walks every (from, to) pair: exactly the moves
// in next are legal, and every other one returns an error instead of being
// dropped (a dropped move is how a pool loses a worker forever).
func TestState_TransitionTable(t *testing.T) {
	legal := map[[2]State]string{
		{Starting, Idle}:   "R received: the worker can serve",
		{Starting, Exited}: "spawn failed: nothing to wait for",
		{Idle, Busy}:       "dispatched a request",
		{Idle, Draining}:   "retired while idle (scale-down, recycle, reload, shutdown)",
		{Idle, Exited}:     "died while idle: reaped at once",
		{Busy, Idle}:       "request done, ready for the next",
		{Busy, Draining}:   "marked while busy, or died/timed out mid-request: the request goroutine still holds it",
		{Draining, Exited}: "reaped after its last request",
	}
	for _, from := range allStates {
		for _, to := range allStates {
			w := &worker{id: 1, state: from}
			err := w.setState(to)
			why, ok := legal[[2]State{from, to}]
			switch {
			case ok && err != nil:
				t.Errorf("%s → %s refused (%v); it is needed: %s", from, to, err, why)
			case !ok && err == nil:
				t.Errorf("%s → %s accepted; it is not in the table", from, to)
			case !ok && (w.state != from || !strings.Contains(err.Error(), "illegal transition")):
				t.Errorf("%s → %s: refused move changed state to %s (err %v)", from, to, w.state, err)
			}
		}
	}
}

// TestState_Paths: the lifecycles the arbiter relies on are reachable.
func TestState_Paths(t *testing.T) {
	paths := [][]State{
		{Starting, Idle, Busy, Idle, Busy, Idle, Draining, Exited}, // served, then retired
		{Starting, Idle, Busy, Draining, Exited},                   // recycled or crashed mid-request
		{Starting, Exited},                                         // failed to boot
		{Starting, Idle, Exited},                                   // died while idle
	}
	for _, p := range paths {
		w := &worker{state: p[0]}
		for _, s := range p[1:] {
			if err := w.setState(s); err != nil {
				t.Fatalf("path %v: %v", p, err)
			}
		}
	}
}

// TestState_Names: every state has a name and an entry in the table, so
// adding a state forces deciding its exits.
func TestState_Names(t *testing.T) {
	for _, s := range allStates {
		if strings.HasPrefix(s.String(), "State(") {
			t.Errorf("state %d has no name", s)
		}
		if _, ok := next[s]; !ok {
			t.Errorf("state %s missing from the transition table", s)
		}
	}
	if len(next) != len(allStates) || len(stateNames) != len(allStates) {
		t.Errorf("table has %d states, names %d, test knows %d", len(next), len(stateNames), len(allStates))
	}
	for r := Crash; r <= ProtocolError; r++ {
		if strings.HasPrefix(r.String(), "ExitReason(") {
			t.Errorf("exit reason %d has no name", r)
		}
	}
}
