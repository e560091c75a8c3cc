package conf

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// String formats a position as FILE:LINE:COL, the shape editors and
// `nginx -t` users expect. A position without a line (a file that could not
// be read at all) prints as FILE alone.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem in a configuration, tied to where it was written.
type Error struct {
	Pos Pos
	// Msg is the operator-facing message, without the position.
	Msg string
	// Err is the underlying cause when there is one (a file read error, a
	// value parse error), so errors.Is and errors.As see through.
	Err error
}

// Error formats as FILE:LINE:COL: message.
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap returns the underlying cause, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one load. Load and Parse return it (as
// error) whenever the configuration is invalid; it is never empty then.
type Errors []*Error

// Error joins every error, one per line, in file order.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// errList collects errors during a load; nothing stops at the first one,
// because an operator fixing a config wants the whole list in one run.
type errList struct {
	errs Errors
}

func (l *errList) add(pos Pos, format string, args ...any) {
	l.errs = append(l.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// wrap records err, prefixed with what was being done, keeping err as cause.
func (l *errList) wrap(pos Pos, what string, err error) {
	l.errs = append(l.errs, &Error{Pos: pos, Msg: what + ": " + err.Error(), Err: err})
}

// sorted returns the errors ordered by file (in the order files were first
// read, main file first), then line and column, so output reads top to
// bottom no matter which pass found each error.
func (l *errList) sorted(fileOrder map[string]int) Errors {
	out := slices.Clone(l.errs)
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(fileRank(fileOrder, a.Pos.File), fileRank(fileOrder, b.Pos.File)),
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
	return out
}

func fileRank(order map[string]int, file string) int {
	if r, ok := order[file]; ok {
		return r
	}
	return len(order)
}
