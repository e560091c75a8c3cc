package conf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Compression defaults and bounds. They are edge/compress's own (its
// DefaultMinLength, MaxMinLength, DefaultTypes and level ranges), which
// conf does not import: an edge test pins the two together.
const (
	defaultCompressMinLength = 1 << 10
	maxCompressMinLength     = 1 << 20
)

func defaultCompressTypes() []string { return []string{"default"} }

// compressLevels is each algorithm's compress_level range.
var compressLevels = map[string]struct{ lo, hi int }{
	"zstd": {1, 22},
	"br":   {0, 11},
	"gzip": {1, 9},
}

// compressOpts holds a block's own compress directives while loading.
// Like cgiOpts they may be written without `compress` (at site level, as
// defaults for the locations that turn it on) and are inherited one by
// one; once inheritance is done finishCompress builds Route.Compress.
type compressOpts struct {
	// algs is `compress ALG...;` when set; empty for `compress off;`.
	algs    []string
	algsSet bool
	algsPos Pos
	// algsBad is set when the block's compress line is invalid (and
	// reported), so its settings are not also reported as unused.
	algsBad bool
	// levels is the block's compress_level lines by algorithm; levelPos
	// maps each algorithm to where its ALG was written.
	levels   map[string]int
	levelPos map[string]Pos
	// minLength is compress_min_length when minLengthSet.
	minLength    int64
	minLengthSet bool
	minLengthPos Pos
	// types is compress_types; nil when the block does not set it.
	types    []string
	typesPos Pos
}

// buildCompress reads `compress ALG...;` or `compress off;`.
func buildCompress(b *builder, sc *scope, n *node) {
	o := &sc.route.compressOpts
	if n.Args[0].Value == "off" && len(n.Args) == 1 {
		o.algs, o.algsSet, o.algsPos = []string{}, true, n.Pos
		return
	}
	algs := make([]string, 0, len(n.Args))
	for _, a := range n.Args {
		var err error
		switch {
		case a.Value == "off":
			err = fmt.Errorf("\"off\" must be the only argument")
		case a.Value == "on":
			err = fmt.Errorf("expected the codings to offer, as in \"compress zstd br gzip;\", got \"on\"")
		case !slices.Contains(encodings, a.Value):
			err = fmt.Errorf("unknown algorithm %q; expected zstd, br, gzip or off", a.Value)
		case slices.Contains(algs, a.Value):
			err = fmt.Errorf("algorithm %q is listed twice", a.Value)
		}
		if err != nil {
			b.argErr(n, a, err)
			o.algsBad = true
			return
		}
		algs = append(algs, a.Value)
	}
	o.algs, o.algsSet, o.algsPos = algs, true, n.Pos
}

// buildCompressLevel reads `compress_level ALG N;`, once per ALG in a
// block.
func buildCompressLevel(b *builder, sc *scope, n *node) {
	alg, lv := n.Args[0], n.Args[1]
	rng, ok := compressLevels[alg.Value]
	if !ok {
		b.argErr(n, alg, fmt.Errorf("unknown algorithm %q; expected zstd, br or gzip", alg.Value))
		return
	}
	level, err := strconv.Atoi(lv.Value)
	if err != nil || level < rng.lo || level > rng.hi {
		b.argErr(n, lv, fmt.Errorf("expected a %s level from %d to %d, got %q", alg.Value, rng.lo, rng.hi, lv.Value))
		return
	}
	o := &sc.route.compressOpts
	if first, dup := o.levelPos[alg.Value]; dup {
		b.errs.add(alg.Pos, "compress_level %s is already set in this block at %s", alg.Value, first)
		return
	}
	if o.levels == nil {
		o.levels, o.levelPos = map[string]int{}, map[string]Pos{}
	}
	o.levels[alg.Value], o.levelPos[alg.Value] = level, alg.Pos
}

// buildCompressMinLength reads `compress_min_length SIZE;`; 0 compresses
// every non-empty body.
func buildCompressMinLength(b *builder, sc *scope, n *node) {
	sz, err := parseSize(n.Args[0].Value)
	if err == nil && sz > maxCompressMinLength {
		err = fmt.Errorf("must be at most 1m (bodies of unknown length are held back up to this size), got %q", n.Args[0].Value)
	}
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	o := &sc.route.compressOpts
	o.minLength, o.minLengthSet, o.minLengthPos = sz, true, n.Pos
}

// buildCompressTypes reads `compress_types TYPE...;`.
func buildCompressTypes(b *builder, sc *scope, n *node) {
	types := make([]string, 0, len(n.Args))
	for _, a := range n.Args {
		t := strings.ToLower(a.Value)
		var err error
		switch {
		case t != "default" && !isMediaRange(t):
			err = fmt.Errorf("expected a media type like text/html, text/*, application/*+json, */* or default, got %q", a.Value)
		case slices.Contains(types, t):
			err = fmt.Errorf("type %q is listed twice", a.Value)
		}
		if err != nil {
			b.argErr(n, a, err)
			return
		}
		types = append(types, t)
	}
	o := &sc.route.compressOpts
	o.types, o.typesPos = types, n.Pos
}

// isMediaRange accepts "type/subtype", "type/*", "type/*+suffix" and
// "*/*", each part an RFC 9110 token without "*" of its own.
func isMediaRange(t string) bool {
	main, sub, ok := strings.Cut(t, "/")
	switch {
	case !ok:
		return false
	case main == "*":
		return sub == "*"
	case sub == "*":
		return isPlainToken(main)
	}
	if suffix, ok := strings.CutPrefix(sub, "*+"); ok {
		sub = suffix
	}
	return isPlainToken(main) && isPlainToken(sub)
}

// isPlainToken reports whether s is a non-empty RFC 9110 token (tchar)
// without "*".
func isPlainToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// compressAlgs returns the algorithms a location offers once inheritance
// is done, and where they were written: its own compress line, else its
// site's. bad is set when that line is invalid. It runs in validate,
// before inheritance.
func compressAlgs(o, site *compressOpts) (algs []string, pos Pos, bad bool) {
	if o.algsSet || o.algsBad {
		return o.algs, o.algsPos, o.algsBad
	}
	return site.algs, site.algsPos, site.algsBad
}

// validateCompressOpts reports compress_level, compress_min_length and
// compress_types lines that cannot apply: in a location that does not
// compress (its own `compress off;`, or no compress in it or its site), or
// at site level when neither the site nor any location taking the line
// from it compresses. A compress_level is reported the same way when no
// block that takes it offers its algorithm. Such a line is almost always
// a forgotten or misspelt compress, so check says so.
func validateCompressOpts(s *Site, errs *errList) {
	so := &s.Route.compressOpts
	for _, l := range s.Locations {
		o := &l.Route.compressOpts
		if algs, pos, bad := compressAlgs(o, so); !bad {
			reportUnusedCompressOpts(o, algs, pos, "in this location or inherited from its site", errs)
		}
	}
	if so.algsBad || slices.ContainsFunc(s.Locations, func(l *Location) bool { return l.Route.compressOpts.algsBad }) {
		return // an invalid compress line may be the one the site's lines serve
	}
	// users returns the offered algorithms of every block that takes a
	// site-level line: the site itself and each location that does not
	// write its own.
	users := func(own func(o *compressOpts) bool) [][]string {
		out := [][]string{so.algs}
		for _, l := range s.Locations {
			if o := &l.Route.compressOpts; !own(o) {
				algs, _, _ := compressAlgs(o, so)
				out = append(out, algs)
			}
		}
		return out
	}
	compresses := func(algs []string) bool { return len(algs) > 0 }
	anyCompress := slices.ContainsFunc(users(func(*compressOpts) bool { return false }), compresses)
	unused := func(pos Pos, name string) {
		if anyCompress {
			errs.add(pos, "%q has no effect: every location that compresses sets its own", name)
		} else {
			errs.add(pos, "%q has no effect without \"compress\" in this site or any of its locations", name)
		}
	}
	if so.minLengthSet && !slices.ContainsFunc(users(func(o *compressOpts) bool { return o.minLengthSet }), compresses) {
		unused(so.minLengthPos, "compress_min_length")
	}
	if so.types != nil && !slices.ContainsFunc(users(func(o *compressOpts) bool { return o.types != nil }), compresses) {
		unused(so.typesPos, "compress_types")
	}
	for alg, pos := range so.levelPos {
		takers := users(func(o *compressOpts) bool { _, ok := o.levels[alg]; return ok })
		switch {
		case !slices.ContainsFunc(takers, compresses):
			unused(pos, "compress_level")
		case !slices.ContainsFunc(takers, func(algs []string) bool { return slices.Contains(algs, alg) }):
			errs.add(pos, "compress_level %s has no effect: neither this site nor a location taking it from the site offers %s", alg, alg)
		}
	}
}

// reportUnusedCompressOpts reports a location's own compress settings
// when the location does not compress, or does not offer a level's
// algorithm. algsPos is where the location's compress line (own or its
// site's) was written.
func reportUnusedCompressOpts(o *compressOpts, algs []string, algsPos Pos, where string, errs *errList) {
	if len(algs) == 0 {
		if o.minLengthSet {
			errs.add(o.minLengthPos, "\"compress_min_length\" has no effect without \"compress\" %s", where)
		}
		if o.types != nil {
			errs.add(o.typesPos, "\"compress_types\" has no effect without \"compress\" %s", where)
		}
		for _, pos := range o.levelPos {
			errs.add(pos, "\"compress_level\" has no effect without \"compress\" %s", where)
		}
		return
	}
	for alg, pos := range o.levelPos {
		if !slices.Contains(algs, alg) {
			errs.add(pos, "compress_level %s has no effect: this location offers only %s (compress at %s)", alg, strings.Join(algs, " "), algsPos)
		}
	}
}

// inheritCompressOpts fills a location's unset compress settings from its
// site, each on its own; compress_level per algorithm.
func inheritCompressOpts(o, site *compressOpts) {
	if !o.algsSet {
		o.algs, o.algsSet, o.algsPos = slices.Clone(site.algs), site.algsSet, site.algsPos
	}
	for alg, level := range site.levels {
		if _, own := o.levels[alg]; own {
			continue
		}
		if o.levels == nil {
			o.levels = map[string]int{}
		}
		o.levels[alg] = level
	}
	if !o.minLengthSet {
		o.minLength, o.minLengthSet = site.minLength, site.minLengthSet
	}
	if o.types == nil {
		o.types = slices.Clone(site.types)
	}
}

// finishCompress builds a route's Compress from its (inherited) settings
// with the defaults filled in; nil when the block does not compress.
func finishCompress(r *Route) {
	o := &r.compressOpts
	if len(o.algs) == 0 {
		r.Compress = nil
		return
	}
	c := &Compress{
		Pos:        o.algsPos,
		Algorithms: slices.Clone(o.algs),
		MinLength:  defaultCompressMinLength,
		Types:      defaultCompressTypes(),
	}
	for _, alg := range o.algs {
		if level, ok := o.levels[alg]; ok {
			if c.Levels == nil {
				c.Levels = map[string]int{}
			}
			c.Levels[alg] = level
		}
	}
	if o.minLengthSet {
		c.MinLength = o.minLength
	}
	if o.types != nil {
		c.Types = slices.Clone(o.types)
	}
	r.Compress = c
}
