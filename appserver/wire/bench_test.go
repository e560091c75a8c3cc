package wire

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkWriteHead measures building a typical request head + end frame.
func BenchmarkWriteHead(b *testing.B) {
	w := NewWriter(io.Discard, 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w.StartFrame(Head, uint32(i))
		w.AppendVar("REQUEST_METHOD", "GET")
		w.AppendVar("SCRIPT_NAME", "")
		w.AppendVar("PATH_INFO", "/hello/world")
		w.AppendVar("QUERY_STRING", "a=1&b=2")
		w.AppendVar("SERVER_NAME", "example.com")
		w.AppendVar("SERVER_PORT", "80")
		w.AppendVar("SERVER_PROTOCOL", "HTTP/1.1")
		w.AppendVar("REMOTE_ADDR", "127.0.0.1")
		w.AppendVar("REMOTE_PORT", "54321")
		w.AppendVar("HTTP_HOST", "example.com")
		w.AppendVar("HTTP_USER_AGENT", "bench/1.0")
		w.AppendVar("HTTP_ACCEPT", "*/*")
		w.AppendVar("REQUEST_URI", "/hello/world?a=1&b=2")
		w.AppendVar("wsgi.url_scheme", "http")
		if err := w.EndFrame(); err != nil {
			b.Fatal(err)
		}
		w.WriteFrame(End, uint32(i), nil)
		w.Flush()
	}
}

// BenchmarkReadResponse measures decoding S + D + Z from a buffered stream.
func BenchmarkReadResponse(b *testing.B) {
	head, _ := AppendResponseHead(nil, 200, []Pair{{"Content-Type", "text/plain"}, {"Content-Length", "13"}})
	var one []byte
	one = AppendFrame(one, Frame{Type: Response, Stream: 1, Payload: head})
	one = AppendFrame(one, Frame{Type: Data, Stream: 1, Payload: []byte("Hello, world!")})
	one = AppendFrame(one, Frame{Type: Done, Stream: 1})
	stream := bytes.Repeat(one, 1000)
	src := bytes.NewReader(stream)
	rd := NewReader(src, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	for i := 0; i < b.N; i++ {
		if i%1000 == 0 {
			src.Reset(stream)
		}
		for j := 0; j < 3; j++ {
			f, err := rd.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			if f.Type == Response {
				_, vars, _ := ParseResponseHead(f.Payload)
				RangeVars(vars, func(k, v []byte) error { return nil })
			}
		}
	}
}
