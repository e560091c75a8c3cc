package conf

import (
	"fmt"
	"strings"
	"testing"
)

// tokString renders tokens compactly: words as their text (quoted ones
// marked with Q), punctuation as itself, each with line:col.
func tokString(toks []token) string {
	var parts []string
	for _, t := range toks {
		s := t.text
		switch {
		case t.kind == tokEOF:
			s = "EOF"
		case t.quoted:
			s = "Q" + fmt.Sprintf("%q", t.text)
		}
		parts = append(parts, fmt.Sprintf("%s@%d:%d", s, t.pos.Line, t.pos.Col))
	}
	return strings.Join(parts, " ")
}

// TestLex pins tokenization and 1-based byte columns.
func TestLex(t *testing.T) {
	cases := []struct {
		name, src, want, err string
	}{
		{"directive", "root /srv;", "root@1:1 /srv@1:6 ;@1:10 EOF@1:11", ""},
		{"block", "site a {\n  listen 80;\n}", "site@1:1 a@1:6 {@1:8 listen@2:3 80@2:10 ;@2:12 }@3:1 EOF@3:2", ""},
		{"comment", "# hi\nstatic; # trailing\n", "static@2:1 ;@2:7 EOF@3:1", ""},
		{"hash inside word", "return 200 a#b;", "return@1:1 200@1:8 a#b@1:12 ;@1:15 EOF@1:16", ""},
		{"double quoted", `return 200 "a b;{}";`, `return@1:1 200@1:8 Q"a b;{}"@1:12 ;@1:20 EOF@1:21`, ""},
		{"single quoted", `x 'it''s';`, "", "1:7: unexpected \"'\" after quoted string; expected a space, \";\" or \"{\""},
		{"escapes", `x "q\"b\\s\n\t\z";`, `x@1:1 Q"q\"b\\s\n\t\\z"@1:3 ;@1:18 EOF@1:19`, ""},
		{"single quote escape", `x 'a\'b';`, `x@1:1 Q"a'b"@1:3 ;@1:9 EOF@1:10`, ""},
		{"empty string", `x "";`, `x@1:1 Q""@1:3 ;@1:5 EOF@1:6`, ""},
		{"tab is one column", "\troot x;", "root@1:2 x@1:7 ;@1:8 EOF@1:9", ""},
		{"crlf", "a;\r\nb;", "a@1:1 ;@1:2 b@2:1 ;@2:2 EOF@2:3", ""},
		{"multibyte counts bytes", "x é y;", "x@1:1 é@1:3 y@1:6 ;@1:7 EOF@1:8", ""},
		{"unterminated double", "root \"/srv;\nnext;", "", `1:6: unterminated string: missing closing "`},
		{"unterminated single", "x 'abc", "", "1:3: unterminated string: missing closing '"},
		{"empty", "", "EOF@1:1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			toks, err := lex("f", []byte(c.src))
			if c.err != "" {
				if err == nil || err.Error() != "f:"+c.err {
					t.Fatalf("error = %v, want f:%s", err, c.err)
				}
				if toks[len(toks)-1].kind != tokEOF {
					t.Fatal("tokens after an error must still end with EOF")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got := tokString(toks); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// TestParseStructure pins brace and semicolon errors and recovery: the
// parser keeps going so later errors are still reported.
func TestParseStructure(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"stray close", "}\nstatic;", []string{
			`/t/main.conf:1:1: unexpected "}" with no open block`,
			`/t/main.conf:2:1: "static" is not allowed in main; allowed in: site, location`,
		}},
		{"unclosed block", "site a.com {\nlisten 80;\n", []string{
			`/t/main.conf:1:1: "site" block is not closed: missing "}" before end of file`,
		}},
		{"missing semicolon at eof", "pid_file x", []string{
			`/t/main.conf:1:1: "pid_file" is not terminated: expected ";" or "{" before end of file`,
		}},
		{"missing semicolon before brace", "site a.com {\nlisten 80; root /www;\nstatic\n}", []string{
			`/t/main.conf:4:1: expected ";" to end "static", got "}"`,
		}},
		{"lone semicolon", ";", []string{`/t/main.conf:1:1: unexpected ";": a directive name is missing`}},
		{"lone block", "{ x; }", []string{`/t/main.conf:1:1: unexpected "{": a block needs a directive name before it`}},
		{"lexer error stops the file", "rot;\nsite a.com {\npid_file \"x;\nrot;", []string{
			`/t/main.conf:1:1: unknown directive "rot"; did you mean "root"?`,
			`/t/main.conf:3:10: unterminated string: missing closing "`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want...) })
	}
}

// TestParseDepthLimit: hostile nesting stops with one error instead of
// recursing once per brace.
func TestParseDepthLimit(t *testing.T) {
	_, errs := parseMem(strings.Repeat("a {", 100000), nil)
	want := "/t/main.conf:1:51: blocks are nested more than 16 deep"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("got %d errors, first %v; want only %s", len(errs), errs[0], want)
	}
}
