package upstream

import (
	"math"
	"slices"
	"time"
)

// chooser picks one server from cands: non-empty, all available, none
// tried yet by this request. keyHash is the request's hash key for the
// hash policies; hasKey is false when the request carries no key.
// Called with Group.mu held.
type chooser func(g *Group, cands []*backend, keyHash uint64, hasKey bool) *backend

func chooserFor(balance string) chooser {
	switch balance {
	case BalanceLeastConn:
		return chooseLeastConn
	case BalanceRandomTwo:
		return chooseRandomTwo
	case BalanceIPHash, BalanceHeader, BalanceCookie:
		return chooseHash
	default:
		return chooseRoundRobin
	}
}

// pick chooses the server for a request's next attempt and counts the
// attempt as active on it; the caller must g.release it. Servers in
// tried are skipped. Primaries are preferred, backups serve only while
// no untried primary is up, and when every untried server is down the
// one whose last failure is oldest is tried anyway (nginx's behaviour:
// a blind attempt beats a certain error, and it finds recoveries early).
// nil means every server has been tried.
func (g *Group) pick(keyHash uint64, hasKey bool, tried []*backend) *backend {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, tier := range [2][]*backend{g.primaries, g.backups} {
		cands := g.cands[:0]
		for _, b := range tier {
			if g.availableLocked(b, now) && !slices.Contains(tried, b) {
				cands = append(cands, b)
			}
		}
		if len(cands) > 0 {
			b := g.choose(g, cands, keyHash, hasKey)
			g.pickedLocked(b, now)
			return b
		}
	}
	var oldest *backend
	for _, b := range g.backends {
		if !slices.Contains(tried, b) && (oldest == nil || b.lastFail.Before(oldest.lastFail)) {
			oldest = b
		}
	}
	if oldest != nil {
		g.pickedLocked(oldest, now)
	}
	return oldest
}

// release ends an attempt counted by pick.
func (g *Group) release(b *backend) { b.active.Add(-1) }

// pickedLocked counts the attempt and, when b is passively down but its
// fail_timeout has passed, lets this request be the one probe: b stays
// unavailable to others for another fail_timeout unless the probe
// succeeds (recordSuccess) first.
func (g *Group) pickedLocked(b *backend, now time.Time) {
	b.active.Add(1)
	if b.passiveDown && !now.Before(b.downUntil) {
		b.downUntil = now.Add(g.cfg.FailTimeout)
	}
}

// chooseRoundRobin is nginx's smooth weighted round robin: every pick
// adds each candidate's weight to its current weight, takes the largest
// and subtracts the total from it. Weights 5,1,1 give a a b a c a a,
// never a burst of five to one server.
func chooseRoundRobin(_ *Group, cands []*backend, _ uint64, _ bool) *backend {
	if len(cands) == 1 {
		return cands[0]
	}
	total := 0
	var best *backend
	for _, b := range cands {
		b.cw += b.weight
		total += b.weight
		if best == nil || b.cw > best.cw {
			best = b
		}
	}
	best.cw -= total
	return best
}

// chooseLeastConn takes the fewest active requests per unit of weight;
// ties go round robin so an idle group still spreads its load.
func chooseLeastConn(g *Group, cands []*backend, _ uint64, _ bool) *backend {
	ties := g.ties[:0]
	var best *backend
	var bestActive int64
	for _, b := range cands {
		a := b.active.Load()
		switch {
		case best == nil || a*int64(best.weight) < bestActive*int64(b.weight):
			best, bestActive = b, a
			ties = append(ties[:0], b)
		case a*int64(best.weight) == bestActive*int64(b.weight):
			ties = append(ties, b)
		}
	}
	if len(ties) == 1 {
		return ties[0]
	}
	return chooseRoundRobin(g, ties, 0, false)
}

// chooseRandomTwo draws two distinct servers at random (by weight) and
// takes the one with fewer active requests per weight: nearly
// least_conn's balance without every proxy herding onto the same
// "least loaded" server, which matters when several edges share a pool.
func chooseRandomTwo(g *Group, cands []*backend, _ uint64, _ bool) *backend {
	if len(cands) == 1 {
		return cands[0]
	}
	total := 0
	for _, b := range cands {
		total += b.weight
	}
	i := weightedIndex(cands, g.rng.IntN(total), -1)
	j := weightedIndex(cands, g.rng.IntN(total-cands[i].weight), i)
	a, b := cands[i], cands[j]
	if b.active.Load()*int64(a.weight) < a.active.Load()*int64(b.weight) {
		return b
	}
	return a
}

// weightedIndex maps r in [0, sum of weights except skip) to an index.
func weightedIndex(cands []*backend, r, skip int) int {
	for i, b := range cands {
		if i == skip {
			continue
		}
		if r < b.weight {
			return i
		}
		r -= b.weight
	}
	return len(cands) - 1 // unreachable with a correct r
}

// chooseHash is weighted rendezvous (highest random weight) hashing:
// each server scores the key, the best score wins. The same key maps to
// the same server while the set of candidates is unchanged, and when a
// server leaves only its own keys move; a retry takes the key's
// next-best server. Requests without a key go round robin.
func chooseHash(g *Group, cands []*backend, keyHash uint64, hasKey bool) *backend {
	if !hasKey {
		return chooseRoundRobin(g, cands, 0, false)
	}
	var best *backend
	bestScore := -1.0
	for _, b := range cands {
		if s := hrwScore(keyHash, b); s > bestScore {
			best, bestScore = b, s
		}
	}
	return best
}

// hrwScore is weight / -ln(u) for u uniform in (0,1) drawn from the
// key and server hashes: the standard weighted rendezvous score, under
// which a server wins a share of keys proportional to its weight.
func hrwScore(keyHash uint64, b *backend) float64 {
	h := mix64(keyHash ^ mix64(b.hash))
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return float64(b.weight) / -math.Log(u)
}

// hashString is FNV-1a 64: deterministic across processes, so hash
// stickiness survives restarts and reloads (unlike hash/maphash).
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// hashBytes is hashString for a byte slice.
func hashBytes(p []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range p {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finalizer; FNV alone mixes its low bits
// poorly for short keys.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
