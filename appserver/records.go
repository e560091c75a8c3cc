package appserver

import (
	"bufio"
	"bytes"
	"errors"
)

// A Python child's output is logged one line per entry, except that a
// traceback stays whole: its "Traceback (most recent call last):" line,
// the indented frames, the exception line, and chained tracebacks after
// it are one entry, as gunicorn's error log keeps them. Split into a
// dozen entries, a traceback is hard to find in a JSON log and
// interleaves with other workers' lines in a log collector.
//
// Lines are joined only while they are already in the read buffer: the
// adapter writes each traceback with one write(2), and waiting for more
// could hold a line back from the log for as long as a worker stays
// quiet. A traceback printed line by line in pieces falls back to one
// entry per piece.

// recordMax bounds one joined entry; past it the rest starts a new one.
const recordMax = 64 << 10

// tbState is where a record stands in the traceback grammar.
type tbState int

const (
	tbNone      tbState = iota // a plain line
	tbAnnounced                // the adapter's "error serving" line: a traceback follows
	tbFrames                   // inside a traceback or a faulthandler dump
	tbException                // after the exception line: a chained traceback may follow
	tbChain                    // "During handling ..." or a blank line between tracebacks
)

var (
	tracebackHead = []byte("Traceback (most recent call last):")
	chainHeads    = [][]byte{
		[]byte("During handling of the above exception, another exception occurred:"),
		[]byte("The above exception was the direct cause of the following exception:"),
	}
	// faulthandler's dump on SIGUSR2 (the timeout traceback) and on a
	// fatal error.
	dumpHeads = [][]byte{[]byte("Thread 0x"), []byte("Current thread 0x"), []byte("Fatal Python error:")}
)

// startState is the state after a record's first line.
func startState(line []byte) tbState {
	switch {
	case bytes.HasPrefix(line, tracebackHead):
		return tbFrames
	case bytes.HasPrefix(line, []byte("tandem worker ")) && bytes.Contains(line, []byte(": error serving ")):
		return tbAnnounced
	}
	for _, h := range dumpHeads {
		if bytes.HasPrefix(line, h) {
			return tbFrames
		}
	}
	return tbNone
}

// continues reports whether line belongs to the record in state s, and
// the state after it.
func continues(s tbState, line []byte) (bool, tbState) {
	indented := len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
	blank := len(bytes.TrimSpace(line)) == 0
	switch s {
	case tbAnnounced:
		if bytes.HasPrefix(line, tracebackHead) {
			return true, tbFrames
		}
	case tbFrames:
		switch {
		case indented:
			return true, tbFrames
		case blank:
			return true, tbChain // between faulthandler's threads, or before a chain
		}
		for _, h := range dumpHeads {
			if bytes.HasPrefix(line, h) {
				return true, tbFrames
			}
		}
		return true, tbException // "ValueError: ..."
	case tbException, tbChain:
		switch {
		case blank:
			return true, tbChain
		case bytes.HasPrefix(line, tracebackHead):
			return true, tbFrames
		case s == tbChain && indented:
			return true, tbFrames
		}
		for _, h := range chainHeads {
			if bytes.HasPrefix(line, h) {
				return true, tbChain
			}
		}
		for _, h := range dumpHeads {
			if bytes.HasPrefix(line, h) {
				return true, tbFrames
			}
		}
	}
	return false, tbNone
}

// readRecord reads the next log entry from br: one line, or a whole
// traceback whose lines are already buffered. The trailing newline and
// blank lines are dropped. err is the read error that ended the input
// (never bufio.ErrBufferFull, whose partial line is returned as a record).
func readRecord(br *bufio.Reader, rec []byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	rec = append(rec[:0], line...)
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil
		}
		return trimRecord(rec), err
	}
	state := startState(rec)
	for state != tbNone && len(rec) < recordMax {
		next, ok := bufferedLine(br)
		if !ok {
			break
		}
		more, st := continues(state, bytes.TrimSuffix(next, []byte("\n")))
		if !more {
			break
		}
		state = st
		rec = append(rec, next...)
		br.Discard(len(next))
	}
	return trimRecord(rec), nil
}

// bufferedLine is the next complete line if it is already buffered,
// without consuming it.
func bufferedLine(br *bufio.Reader) ([]byte, bool) {
	buf, _ := br.Peek(br.Buffered())
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return nil, false
	}
	return buf[:i+1], true
}

func trimRecord(rec []byte) []byte {
	return bytes.TrimRight(rec, "\r\n")
}
