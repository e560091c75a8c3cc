// Package wire is the codec of tandem's worker protocol (docs/protocol.md):
// 9-byte frame headers, uwsgi-encoded vars, response heads, file frames with
// a descriptor passed by SCM_RIGHTS, and a buffered reader and writer that
// allocate nothing per frame in the steady state.
//
// The codec never trusts the peer: every length is checked against the
// bytes present and against MaxPayload, and malformed input returns an
// error instead of panicking (FuzzDecode pins this).
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Frame layout and limits from docs/protocol.md.
const (
	// HeaderLen is type (1) + stream (4) + length (4).
	HeaderLen = 9
	// MaxPayload is the largest payload either side accepts; a longer
	// frame closes the connection.
	MaxPayload = 16 << 20
	// MaxChunk is the largest B or D payload.
	MaxChunk = 64 << 10
	// MaxVarLen bounds one key or one value of a uwsgi vars block.
	MaxVarLen = 65535
	// ToEOF as an F frame's count means "to the end of the file".
	ToEOF = ^uint64(0)
)

// Frame types. Upper case: the worker connection; lower case: the zygote
// control channel.
const (
	Head     byte = 'H' // edge → worker: request head (uwsgi vars)
	Body     byte = 'B' // edge → worker: request body chunk
	End      byte = 'E' // edge → worker: end of request body
	Abort    byte = 'A' // edge → worker: client went away
	Ready    byte = 'R' // worker → edge: ready, payload = pid
	Response byte = 'S' // worker → edge: status + headers
	Data     byte = 'D' // worker → edge: response body chunk
	File     byte = 'F' // worker → edge: offset, count, fd attached
	Done     byte = 'Z' // worker → edge: response end
	Error    byte = 'X' // worker → edge: app failed after S

	ZygoteReady  byte = 'r' // zygote → tandem: imported, payload = pid
	ImportError  byte = 'i' // zygote → tandem: traceback, then exit 3
	Fork         byte = 'f' // tandem → zygote: fork a worker, fd attached
	ForkError    byte = 'e' // zygote → tandem: fork failed for stream id
	TypeNotFrame byte = 0   // never sent; zero value of Frame.Type
)

// Errors returned by the decoders. Callers close the connection on any of
// them: the stream is no longer in sync.
var (
	// ErrTooLarge is a frame whose length exceeds MaxPayload.
	ErrTooLarge = errors.New("wire: frame payload exceeds 16 MiB")
	// ErrShort is input that ends inside a frame or a vars block.
	ErrShort = errors.New("wire: truncated input")
	// ErrVarTooLong is a key or value longer than MaxVarLen.
	ErrVarTooLong = errors.New("wire: var longer than 65535 bytes")
)

// Frame is one decoded frame. Payload may alias the decoder's buffer; see
// Reader.ReadFrame for how long it stays valid.
type Frame struct {
	Type    byte
	Stream  uint32
	Payload []byte
}

// AppendHeader appends a frame header for a payload of n bytes.
func AppendHeader(dst []byte, typ byte, stream uint32, n int) []byte {
	dst = append(dst, typ)
	dst = binary.LittleEndian.AppendUint32(dst, stream)
	return binary.LittleEndian.AppendUint32(dst, uint32(n))
}

// AppendFrame appends f, header and payload.
func AppendFrame(dst []byte, f Frame) []byte {
	dst = AppendHeader(dst, f.Type, f.Stream, len(f.Payload))
	return append(dst, f.Payload...)
}

// ParseHeader reads a frame header from the first HeaderLen bytes of b.
func ParseHeader(b []byte) (typ byte, stream uint32, n int, err error) {
	if len(b) < HeaderLen {
		return 0, 0, 0, ErrShort
	}
	typ = b[0]
	stream = binary.LittleEndian.Uint32(b[1:5])
	l := binary.LittleEndian.Uint32(b[5:9])
	if l > MaxPayload {
		return 0, 0, 0, fmt.Errorf("frame %q length %d: %w", typ, l, ErrTooLarge)
	}
	return typ, stream, int(l), nil
}

// Decode parses the frame at the start of b and returns it with the number
// of bytes it used. Payload aliases b. An incomplete frame returns ErrShort.
func Decode(b []byte) (Frame, int, error) {
	typ, stream, n, err := ParseHeader(b)
	if err != nil {
		return Frame{}, 0, err
	}
	if len(b)-HeaderLen < n {
		return Frame{}, 0, ErrShort
	}
	return Frame{Type: typ, Stream: stream, Payload: b[HeaderLen : HeaderLen+n]}, HeaderLen + n, nil
}

// AppendFileRange appends the payload of an F frame.
func AppendFileRange(dst []byte, offset, count uint64) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, offset)
	return binary.LittleEndian.AppendUint64(dst, count)
}

// ParseFileRange reads an F frame's payload: offset and count (ToEOF for
// "to the end of the file").
func ParseFileRange(p []byte) (offset, count uint64, err error) {
	if len(p) != 16 {
		return 0, 0, fmt.Errorf("file frame payload of %d bytes, want 16: %w", len(p), ErrShort)
	}
	return binary.LittleEndian.Uint64(p[:8]), binary.LittleEndian.Uint64(p[8:]), nil
}
