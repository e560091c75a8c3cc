package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// vector is one entry of appserver/testdata/vectors.json, shared with the
// Python codec.
type vector struct {
	Name    string          `json:"name"`
	Hex     string          `json:"hex"`
	Type    json.RawMessage `json:"type"`
	Stream  uint32          `json:"stream"`
	Vars    [][2]string     `json:"vars"`
	Status  *int            `json:"status"`
	Headers [][2]string     `json:"headers"`
	DataHex *string         `json:"data_hex"`
	Offset  *uint64         `json:"offset"`
	Count   *uint64         `json:"count"`
}

func (v vector) typ(t *testing.T) byte {
	t.Helper()
	var s string
	if err := json.Unmarshal(v.Type, &s); err == nil && len(s) == 1 {
		return s[0]
	}
	var n int
	if err := json.Unmarshal(v.Type, &n); err == nil {
		return byte(n)
	}
	t.Fatalf("%s: unreadable type %s", v.Name, v.Type)
	return 0
}

// pairs converts vector pairs to wire pairs. The shared vectors spell
// bytes as latin-1 code points (PEP 3333's "bytes as latin-1" strings), so
// "caf\u00e9" is the four bytes 63 61 66 e9.
func pairs(in [][2]string) []Pair {
	out := make([]Pair, len(in))
	for i, p := range in {
		out[i] = Pair{latin1(p[0]), latin1(p[1])}
	}
	return out
}

func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			return s // not a latin-1 byte string; compare as is
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// protocolExamples are the two byte-level examples of docs/protocol.md, so
// the codec is pinned even before the shared vectors file exists.
var protocolExamples = []vector{
	{
		Name: "doc GET /hi?x=1 head", Type: json.RawMessage(`"H"`), Stream: 7,
		Hex: "48" + "07000000" + "38000000" +
			"0e00" + "524551554553545f4d4554484f44" + "0300" + "474554" +
			"0900" + "504154485f494e464f" + "0300" + "2f6869" +
			"0c00" + "51554552595f535452494e47" + "0300" + "783d31",
		Vars: [][2]string{{"REQUEST_METHOD", "GET"}, {"PATH_INFO", "/hi"}, {"QUERY_STRING", "x=1"}},
	},
	{Name: "doc end of body", Type: json.RawMessage(`"E"`), Stream: 7, Hex: "45" + "07000000" + "00000000", DataHex: ptr("")},
	{
		Name: "doc 200 text/plain", Type: json.RawMessage(`"S"`), Stream: 7,
		Hex: "53" + "07000000" + "1c000000" + "c800" +
			"0c00" + "436f6e74656e742d54797065" + "0a00" + "746578742f706c61696e",
		Status: ptr(200), Headers: [][2]string{{"Content-Type", "text/plain"}},
	},
}

func ptr[T any](v T) *T { return &v }

func loadVectors(t *testing.T) []vector {
	t.Helper()
	vs := append([]vector(nil), protocolExamples...)
	b, err := os.ReadFile("../testdata/vectors.json")
	if errors.Is(err, os.ErrNotExist) {
		t.Log("appserver/testdata/vectors.json not there yet: using protocol.md's examples only")
		return vs
	}
	if err != nil {
		t.Fatal(err)
	}
	var shared []vector
	if err := json.Unmarshal(b, &shared); err != nil {
		t.Fatalf("vectors.json: %v", err)
	}
	if len(shared) == 0 {
		t.Fatal("vectors.json is empty")
	}
	return append(vs, shared...)
}

// TestVectors_DecodeAndReencode: every shared vector decodes to the fields
// it names and encodes back to the same bytes, so Go and Python agree.
func TestVectors_DecodeAndReencode(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			raw, err := hex.DecodeString(strings.ReplaceAll(v.Hex, " ", ""))
			if err != nil {
				t.Fatalf("hex: %v", err)
			}
			f, n, err := Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n != len(raw) {
				t.Fatalf("Decode used %d of %d bytes", n, len(raw))
			}
			if want := v.typ(t); f.Type != want || f.Stream != v.Stream {
				t.Fatalf("got type %q stream %d, want %q %d", f.Type, f.Stream, want, v.Stream)
			}
			var payload []byte
			switch {
			case v.Vars != nil:
				got, err := DecodeVars(f.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if want := pairs(v.Vars); !equalPairs(got, want) {
					t.Fatalf("vars %q, want %q", got, want)
				}
				payload, err = AppendVars(nil, got)
				if err != nil {
					t.Fatal(err)
				}
			case v.Status != nil:
				st, vars, err := ParseResponseHead(f.Payload)
				if err != nil {
					t.Fatal(err)
				}
				hs, err := DecodeVars(vars)
				if err != nil {
					t.Fatal(err)
				}
				if st != *v.Status || !equalPairs(hs, pairs(v.Headers)) {
					t.Fatalf("status %d headers %q, want %d %q", st, hs, *v.Status, v.Headers)
				}
				payload, err = AppendResponseHead(nil, st, hs)
				if err != nil {
					t.Fatal(err)
				}
			case v.Offset != nil || v.Count != nil:
				off, cnt, err := ParseFileRange(f.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if v.Offset == nil || v.Count == nil || off != *v.Offset || cnt != *v.Count {
					t.Fatalf("range %d,%d; want %v,%v", off, cnt, v.Offset, v.Count)
				}
				payload = AppendFileRange(nil, off, cnt)
			default:
				want := ""
				if v.DataHex != nil {
					want = *v.DataHex
				}
				if got := hex.EncodeToString(f.Payload); got != want {
					t.Fatalf("payload %s, want %s", got, want)
				}
				payload = append([]byte(nil), f.Payload...)
			}
			again := AppendFrame(nil, Frame{Type: f.Type, Stream: f.Stream, Payload: payload})
			if !bytes.Equal(again, raw) {
				t.Fatalf("re-encoded\n%x\nwant\n%x", again, raw)
			}
		})
	}
}

func equalPairs(a, b []Pair) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestParseHeader_RejectsOver16MiB: a frame longer than 16 MiB closes the
// connection instead of making us allocate it.
func TestParseHeader_RejectsOver16MiB(t *testing.T) {
	b := AppendHeader(nil, Data, 1, MaxPayload+1)
	if _, _, _, err := ParseHeader(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	b = AppendHeader(nil, Data, 1, MaxPayload)
	if _, _, n, err := ParseHeader(b); err != nil || n != MaxPayload {
		t.Fatalf("n=%d err=%v at exactly 16 MiB", n, err)
	}
}

// TestAppendVar_RejectsLongValues: keys and values are u16-length-prefixed.
func TestAppendVar_RejectsLongValues(t *testing.T) {
	if _, err := AppendVar(nil, "K", strings.Repeat("v", MaxVarLen+1)); !errors.Is(err, ErrVarTooLong) {
		t.Fatalf("err = %v", err)
	}
	if _, err := AppendVar(nil, "K", strings.Repeat("v", MaxVarLen)); err != nil {
		t.Fatal(err)
	}
}

// TestReader_FramesAcrossReads: frames split at every byte boundary still
// decode (the kernel may return any split).
func TestReader_FramesAcrossReads(t *testing.T) {
	var stream []byte
	big := bytes.Repeat([]byte("x"), DefaultBufSize*2) // forces the buffer to grow
	stream = AppendFrame(stream, Frame{Type: Data, Stream: 1, Payload: []byte("hello")})
	stream = AppendFrame(stream, Frame{Type: Head, Stream: 2, Payload: big})
	stream = AppendFrame(stream, Frame{Type: Done, Stream: 1})
	rd := NewReader(&oneByteReader{b: stream}, 16)
	want := []Frame{{Data, 1, []byte("hello")}, {Head, 2, big}, {Done, 1, nil}}
	for i, w := range want {
		f, err := rd.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != w.Type || f.Stream != w.Stream || !bytes.Equal(f.Payload, w.Payload) {
			t.Fatalf("frame %d: got %q/%d/%d bytes", i, f.Type, f.Stream, len(f.Payload))
		}
	}
	if _, err := rd.ReadFrame(); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
	rd = NewReader(bytes.NewReader(stream[:5]), 0)
	if _, err := rd.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated header: %v, want ErrUnexpectedEOF", err)
	}
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

// TestWriter_StartEndFrame: a head built in place matches AppendFrame.
func TestWriter_StartEndFrame(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, 0)
	w.StartFrame(Head, 7)
	w.AppendVar("REQUEST_METHOD", "GET")
	w.AppendVar("PATH_INFO", "/hi")
	w.AppendVar("QUERY_STRING", "x=1")
	if err := w.EndFrame(); err != nil {
		t.Fatal(err)
	}
	w.WriteFrame(End, 7, nil)
	w.Flush()
	want, _ := hex.DecodeString(protocolExamples[0].Hex + protocolExamples[1].Hex)
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("got %x\nwant %x", out.Bytes(), want)
	}
	w.StartFrame(Head, 8)
	if err := w.AppendVar("K", strings.Repeat("v", MaxVarLen+1)); err == nil {
		t.Fatal("long var accepted")
	}
	if err := w.EndFrame(); err == nil || w.Buffered() != 0 {
		t.Fatalf("failed frame left %d bytes buffered (err %v)", w.Buffered(), err)
	}
}

// TestFileFrame_PassesDescriptor: an F frame's descriptor arrives with the
// frame over a socketpair, even when several frames share one recvmsg.
func TestFileFrame_PassesDescriptor(t *testing.T) {
	a, b := socketpair(t)
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("0123456789")
	for i := 0; i < 2; i++ {
		if err := WriteFrameFD(a, File, 3, AppendFileRange(nil, 2, ToEOF), int(f.Fd())); err != nil {
			t.Fatal(err)
		}
	}
	a.Write(AppendFrame(nil, Frame{Type: Done, Stream: 3}))
	rd := NewReader(b, 0)
	for i := 0; i < 2; i++ {
		fr, err := rd.ReadFrame()
		if err != nil || fr.Type != File {
			t.Fatalf("frame %d: %q %v", i, fr.Type, err)
		}
		off, cnt, err := ParseFileRange(fr.Payload)
		if err != nil || off != 2 || cnt != ToEOF {
			t.Fatalf("range %d %d %v", off, cnt, err)
		}
		got, ok := rd.TakeFile("x")
		if !ok {
			t.Fatalf("frame %d: no descriptor", i)
		}
		buf := make([]byte, 4)
		got.ReadAt(buf, int64(off))
		got.Close()
		if string(buf) != "2345" {
			t.Fatalf("read %q through passed fd", buf)
		}
	}
	if fr, err := rd.ReadFrame(); err != nil || fr.Type != Done {
		t.Fatalf("last frame %q %v", fr.Type, err)
	}
	rd.Close()
}

func socketpair(tb testing.TB) (*net.UnixConn, *net.UnixConn) {
	tb.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sp")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	a, b := conn(fds[0]), conn(fds[1])
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// FuzzDecode: no input makes the decoders panic, and anything that decodes
// re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, v := range protocolExamples {
		raw, _ := hex.DecodeString(v.Hex)
		f.Add(raw)
	}
	f.Add(AppendFrame(nil, Frame{Type: File, Stream: 1, Payload: AppendFileRange(nil, 1, ToEOF)}))
	f.Add([]byte{'S', 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendFrame(nil, fr), b[:n]) {
			t.Fatalf("frame does not round-trip")
		}
		if ps, err := DecodeVars(fr.Payload); err == nil {
			again, err := AppendVars(nil, ps)
			if err != nil || !bytes.Equal(again, fr.Payload) {
				t.Fatalf("vars do not round-trip: %v", err)
			}
		}
		if st, vars, err := ParseResponseHead(fr.Payload); err == nil {
			if hs, err := DecodeVars(vars); err == nil {
				again, err := AppendResponseHead(nil, st, hs)
				if err != nil || !bytes.Equal(again, fr.Payload) {
					t.Fatalf("response head does not round-trip: %v", err)
				}
			}
		}
		ParseFileRange(fr.Payload)
		// The streaming reader agrees with Decode.
		rf, err := NewReader(bytes.NewReader(b), 16).ReadFrame()
		if err != nil || rf.Type != fr.Type || rf.Stream != fr.Stream || !bytes.Equal(rf.Payload, fr.Payload) {
			t.Fatalf("Reader disagrees with Decode: %v", err)
		}
	})
}
