package conf

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// maxDepth bounds block nesting. Only two levels are meaningful (site,
// location); the bound keeps hostile input from recursing without limit.
const maxDepth = 16

// node is one directive in the generic tree: a name, arguments and, for
// block directives, the children. Includes are already spliced in.
type node struct {
	Name string
	Pos  Pos
	Args []arg
	// HasBlock distinguishes "site a { }" (empty block) from "site a;".
	HasBlock bool
	Block    []*node
	// dir is the absolute directory of the file the directive was written
	// in; relative paths in its arguments resolve against it.
	dir string
}

// arg is one argument with its own position, so errors point at the word
// that is wrong rather than at the directive.
type arg struct {
	Value  string
	Pos    Pos
	Quoted bool
}

// parser builds the tree for one load: the main file and every include.
type parser struct {
	env  env
	errs *errList
	// stack holds the absolute paths of the files being read, outermost
	// first; a file already on it closes an include cycle.
	stack []string
	// files lists every file read, as absolute paths, main file first.
	files []string
	// order ranks display names for sorting errors by file.
	order map[string]int
}

// fileParser walks the tokens of one file.
type fileParser struct {
	*parser
	toks  []token
	i     int
	dir   string // absolute directory of this file
	name  string // display name, as used in positions
	depth int    // open blocks, bounded by maxDepth
	// truncated is set when the lexer stopped early: the EOF it reports is
	// not the real end, so unclosed blocks and unfinished directives there
	// are consequences, not errors worth reporting.
	truncated bool
}

// parseFile lexes and parses one file. display is the name shown in
// positions; abs is its absolute path, used for cycles and relative paths.
func (p *parser) parseFile(display, abs string, src []byte) []*node {
	if _, ok := p.order[display]; !ok {
		p.order[display] = len(p.order)
	}
	if !slices.Contains(p.files, abs) {
		p.files = append(p.files, abs)
	}
	toks, lexErr := lex(display, src)
	if lexErr != nil {
		p.errs.errs = append(p.errs.errs, lexErr)
	}
	p.stack = append(p.stack, abs)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	fp := &fileParser{parser: p, toks: toks, dir: filepath.Dir(abs), name: display, truncated: lexErr != nil}
	nodes, _ := fp.parseList(nil)
	return nodes
}

func (fp *fileParser) next() token {
	t := fp.toks[fp.i]
	if t.kind != tokEOF {
		fp.i++
	}
	return t
}

// parseList reads directives until EOF, or until "}" when parent (the
// block's directive) is non-nil; closed reports that the "}" was found.
func (fp *fileParser) parseList(parent *node) (out []*node, closed bool) {
	for {
		t := fp.next()
		switch t.kind {
		case tokEOF:
			if parent != nil && !fp.truncated {
				fp.errs.add(parent.Pos, "%q block is not closed: missing \"}\" before end of file", parent.Name)
			}
			return out, false
		case tokRBrace:
			if parent != nil {
				return out, true
			}
			fp.errs.add(t.pos, `unexpected "}" with no open block`)
		case tokSemi:
			fp.errs.add(t.pos, `unexpected ";": a directive name is missing`)
		case tokLBrace:
			fp.errs.add(t.pos, `unexpected "{": a block needs a directive name before it`)
			fp.block(&node{Name: "{", Pos: t.pos}, t.pos) // skip it, keep braces balanced
		case tokWord:
			n := fp.parseDirective(t)
			if n == nil {
				continue
			}
			if n.Name == "include" {
				out = append(out, fp.include(n)...)
			} else {
				out = append(out, n)
			}
		}
	}
}

// block parses the body of a block whose "{" is at open, bounding depth.
func (fp *fileParser) block(parent *node, open Pos) ([]*node, bool) {
	if fp.depth >= maxDepth {
		fp.errs.add(open, "blocks are nested more than %d deep", maxDepth)
		fp.truncated = true // give up on the file: nothing sane follows
		fp.i = len(fp.toks) - 1
		return nil, false
	}
	fp.depth++
	defer func() { fp.depth-- }()
	return fp.parseList(parent)
}

// parseDirective reads arguments up to ";" or a block. It returns nil for
// a directive or block cut off by a lexer error.
func (fp *fileParser) parseDirective(name token) *node {
	n := &node{Name: name.text, Pos: name.pos, dir: fp.dir}
	for {
		t := fp.next()
		switch t.kind {
		case tokWord:
			n.Args = append(n.Args, arg{Value: t.text, Pos: t.pos, Quoted: t.quoted})
		case tokSemi:
			return n
		case tokLBrace:
			n.HasBlock = true
			var closed bool
			n.Block, closed = fp.block(n, t.pos)
			if !closed && fp.truncated {
				return nil // half a block would only produce follow-on errors
			}
			return n
		case tokRBrace:
			fp.errs.add(t.pos, `expected ";" to end %q, got "}"`, n.Name)
			fp.i-- // let the caller's block see its "}"
			return n
		case tokEOF:
			if fp.truncated {
				return nil
			}
			fp.errs.add(n.Pos, `%q is not terminated: expected ";" or "{" before end of file`, n.Name)
			return n
		}
	}
}

// include expands `include PATTERN;` in place. The pattern is a glob
// relative to the including file's directory. A pattern without glob
// metacharacters must match a file (a typo should not silently drop a
// site); a glob that matches nothing is fine, like nginx, so an empty
// conf.d/ works.
func (fp *fileParser) include(n *node) []*node {
	if !checkShape(fp.errs, n, directives["include"]) {
		return nil
	}
	a := n.Args[0]
	pattern := a.Value
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(fp.name), pattern)
	}
	matches, err := fp.env.glob(pattern)
	if err != nil {
		fp.errs.wrap(a.Pos, fmt.Sprintf("include %q", a.Value), err)
		return nil
	}
	if len(matches) == 0 && !hasGlobMeta(a.Value) {
		fp.errs.add(a.Pos, "include %q: no such file", a.Value)
		return nil
	}
	slices.Sort(matches)
	var out []*node
	for _, m := range matches {
		out = append(out, fp.includeFile(a, m)...)
	}
	return out
}

func (fp *fileParser) includeFile(a arg, display string) []*node {
	abs, err := filepath.Abs(display)
	if err != nil {
		fp.errs.wrap(a.Pos, fmt.Sprintf("include %q", display), err)
		return nil
	}
	if slices.Contains(fp.stack, abs) {
		fp.errs.add(a.Pos, "include cycle: %q is already being read (%s)", display, fp.cycleText(abs))
		return nil
	}
	src, err := fp.env.readFile(abs)
	if err != nil {
		fp.errs.wrap(a.Pos, fmt.Sprintf("include %q", display), err)
		return nil
	}
	return fp.parseFile(display, abs, src)
}

// cycleText renders the include chain that loops back to abs.
func (fp *fileParser) cycleText(abs string) string {
	i := slices.Index(fp.stack, abs)
	chain := make([]string, 0, len(fp.stack)-i+1)
	for _, f := range fp.stack[i:] {
		chain = append(chain, filepath.Base(f))
	}
	chain = append(chain, filepath.Base(abs))
	return strings.Join(chain, " -> ")
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }
