package conf

import "fmt"

// tokenKind is the small alphabet of the config language.
type tokenKind int

const (
	tokWord   tokenKind = iota // a bare or quoted word
	tokSemi                    // ;
	tokLBrace                  // {
	tokRBrace                  // }
	tokEOF
)

func (k tokenKind) String() string {
	switch k {
	case tokSemi:
		return `";"`
	case tokLBrace:
		return `"{"`
	case tokRBrace:
		return `"}"`
	case tokEOF:
		return "end of file"
	}
	return "word"
}

// token is one lexeme with the position of its first byte.
type token struct {
	kind tokenKind
	// text is the word's value, with quotes removed and escapes applied.
	text string
	// quoted is set for "..." and '...' words, so a quoted ";" or "{" stays
	// a word and a quoted "off" could later be told from the keyword.
	quoted bool
	pos    Pos
}

// lexer turns one file into tokens. Lines and columns are 1-based; a column
// counts bytes, not runes or display cells (a tab is one column), the same
// convention as the Go compiler.
type lexer struct {
	file      string
	src       []byte
	off       int
	line, col int
}

// lex returns every token of src, ending with tokEOF. On a lexical error
// (an unterminated string) it returns the tokens read so far, terminated by
// tokEOF, plus the error: the rest of the file cannot be trusted.
func lex(file string, src []byte) ([]token, *Error) {
	lx := &lexer{file: file, src: src, line: 1, col: 1}
	var toks []token
	for {
		t, err := lx.next()
		if err != nil {
			return append(toks, token{kind: tokEOF, pos: lx.pos()}), err
		}
		toks = append(toks, t)
		if t.kind == tokEOF {
			return toks, nil
		}
	}
}

func (lx *lexer) pos() Pos { return Pos{File: lx.file, Line: lx.line, Col: lx.col} }

// advance moves past one byte, tracking line and column.
func (lx *lexer) advance() byte {
	c := lx.src[lx.off]
	lx.off++
	if c == '\n' {
		lx.line++
		lx.col = 1
	} else {
		lx.col++
	}
	return c
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isDelim reports bytes that end a bare word.
func isDelim(c byte) bool { return isSpace(c) || c == ';' || c == '{' || c == '}' }

func (lx *lexer) skipSpaceAndComments() {
	for lx.off < len(lx.src) {
		c := lx.src[lx.off]
		switch {
		case isSpace(c):
			lx.advance()
		case c == '#':
			for lx.off < len(lx.src) && lx.src[lx.off] != '\n' {
				lx.advance()
			}
		default:
			return
		}
	}
}

func (lx *lexer) next() (token, *Error) {
	lx.skipSpaceAndComments()
	start := lx.pos()
	if lx.off >= len(lx.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	switch c := lx.src[lx.off]; c {
	case ';':
		lx.advance()
		return token{kind: tokSemi, text: ";", pos: start}, nil
	case '{':
		lx.advance()
		return token{kind: tokLBrace, text: "{", pos: start}, nil
	case '}':
		lx.advance()
		return token{kind: tokRBrace, text: "}", pos: start}, nil
	case '"', '\'':
		return lx.quoted(start)
	}
	// A bare word runs to the next delimiter. '#' and quotes inside a word
	// are literal, as in nginx ("a#b" is one word), so URLs with fragments
	// need no quoting.
	begin := lx.off
	for lx.off < len(lx.src) && !isDelim(lx.src[lx.off]) {
		lx.advance()
	}
	return token{kind: tokWord, text: string(lx.src[begin:lx.off]), pos: start}, nil
}

// quoted reads a "..." or '...' string. Escapes \" \' \\ \n \t are
// translated; any other backslash is kept literally, so regex-like text
// and Windows-ish paths survive.
func (lx *lexer) quoted(start Pos) (token, *Error) {
	q := lx.advance()
	var buf []byte
	for lx.off < len(lx.src) {
		c := lx.advance()
		switch {
		case c == q:
			if lx.off < len(lx.src) && !isDelim(lx.src[lx.off]) {
				return token{}, &Error{Pos: lx.pos(), Msg: fmt.Sprintf(
					"unexpected %q after quoted string; expected a space, \";\" or \"{\"", string(lx.src[lx.off]))}
			}
			return token{kind: tokWord, text: string(buf), quoted: true, pos: start}, nil
		case c == '\\' && lx.off < len(lx.src):
			buf = append(buf, unescape(lx.advance(), q)...)
		default:
			buf = append(buf, c)
		}
	}
	return token{}, &Error{Pos: start, Msg: "unterminated string: missing closing " + string(q)}
}

func unescape(c, quote byte) []byte {
	switch c {
	case 'n':
		return []byte{'\n'}
	case 't':
		return []byte{'\t'}
	case '\\', quote:
		return []byte{c}
	}
	return []byte{'\\', c}
}
