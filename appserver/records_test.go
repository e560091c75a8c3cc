package appserver

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func records(t *testing.T, r io.Reader) []string {
	t.Helper()
	br := bufio.NewReaderSize(r, 16<<10)
	var out []string
	var rec []byte
	for {
		var err error
		rec, err = readRecord(br, rec)
		if len(rec) > 0 || err == nil {
			out = append(out, string(rec))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return out
		}
	}
}

const adapterReport = `tandem worker 41: error serving GET /boom
Traceback (most recent call last):
  File "/srv/app.py", line 9, in application
    raise ValueError("bad")
    ^^^^^^^^^^^^^^^^^^^^^^^
ValueError: bad`

const chained = `Traceback (most recent call last):
  File "/srv/app.py", line 3, in get
    return d["a"]
KeyError: 'a'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/app.py", line 5, in get
    raise LookupError("no a")
LookupError: no a`

const dump = `Thread 0x00007f0a1b2c3700 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 324 in wait

Current thread 0x00007f0a1d4e5740 (most recent call first):
  File "/srv/app.py", line 12 in slow
  File "/srv/app.py", line 20 in application`

func TestReadRecord_TracebacksStayWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"plain lines", "one\ntwo\n\nthree\n", []string{"one", "two", "", "three"}},
		{"no final newline", "one\ntwo", []string{"one", "two"}},
		{"adapter report", "before\n" + adapterReport + "\nafter\n", []string{"before", adapterReport, "after"}},
		{"chained", chained + "\n\nnext\n", []string{chained, "next"}},
		{"faulthandler dump", dump + "\n\ntandem worker 7: exiting\n", []string{dump, "tandem worker 7: exiting"}},
		{"announced without traceback", "tandem worker 1: error serving GET /\nplain\n",
			[]string{"tandem worker 1: error serving GET /", "plain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := records(t, strings.NewReader(tc.in)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("records:\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// lineReader hands out one line per Read, as a writer that prints a
// traceback line by line with pauses would.
type lineReader struct{ lines []string }

func (l *lineReader) Read(p []byte) (int, error) {
	if len(l.lines) == 0 {
		return 0, io.EOF
	}
	n := copy(p, l.lines[0])
	l.lines[0] = l.lines[0][n:]
	if l.lines[0] == "" {
		l.lines = l.lines[1:]
	}
	return n, nil
}

// Lines not yet written are not waited for: each arrives as its own entry.
func TestReadRecord_DoesNotWaitForMoreLines(t *testing.T) {
	lr := &lineReader{lines: strings.SplitAfter(adapterReport+"\n", "\n")}
	got := records(t, lr)
	want := strings.Split(adapterReport, "\n")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records:\n%q\nwant\n%q", got, want)
	}
}

// Through the child output pipe: one traceback, one log entry.
func TestStartOutput_OneEntryPerTraceback(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	pw, s, err := startOutput(zap.New(core), zapcore.ErrorLevel, zap.String("app", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(pw, "hello\n"+adapterReport+"\n"); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	<-s.done
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	if want := []string{"hello", adapterReport}; !reflect.DeepEqual(msgs, want) {
		t.Fatalf("entries:\n%q\nwant\n%q", msgs, want)
	}
	if tail := s.Tail(0); !strings.Contains(tail, "ValueError: bad\n") {
		t.Fatalf("tail %q lacks the traceback", tail)
	}
}
