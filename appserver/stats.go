package appserver

// Stats is a snapshot of a pool, for tests and status pages.
type Stats struct {
	Generation int // serving generation, 0 before the first is ready
	Want       int // target number of workers
	Starting   int
	Idle       int // ready, of any generation
	Busy       int
	Draining   int
	Queued     int
	InFlight   int // requests on workers (a command worker takes several)
	// Pipelined counts requests written to a busy worker behind its
	// current one; Redispatched those of them sent elsewhere because the
	// worker failed before reading them. Both since Start.
	Pipelined, Redispatched uint64
}

// Live is the number of workers that serve or will soon serve.
func (s Stats) Live() int { return s.Starting + s.Idle + s.Busy }

func (a *arbiter) stats() Stats {
	s := Stats{Want: a.want, Queued: a.disp.queued()}
	if a.cur != nil {
		s.Generation = a.cur.id
	}
	for _, w := range a.workers {
		switch w.state {
		case Starting:
			s.Starting++
		case Idle:
			s.Idle++
		case Busy:
			s.Busy++
		case Draining:
			s.Draining++
		}
		s.InFlight += w.inflight
	}
	return s
}
