package compress

import (
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encoder is what the three libraries' stream writers have in common.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// Window sizes. A window larger than the response gains nothing, and every
// pooled encoder keeps its window allocated: 512 KiB covers nearly every
// page, script and JSON body. For zstd it also makes the encoder's history
// buffer exactly its 1 MiB minimum (window + window), where the library's
// 8 MiB default would hold 16 MiB per idle encoder, and it keeps decoders
// well inside the 8 MiB that RFC 8878 §3 lets HTTP clients insist on.
const (
	zstdWindow  = 512 << 10
	brotliLGWin = 19 // 512 KiB
)

// codec describes one content coding: its token, level range and how to
// build a fresh encoder at a level.
type codec struct {
	name               string
	minLevel, maxLevel int
	defLevel           int
	newEncoder         func(level int) (encoder, error)
}

var codecs = [...]codec{
	{
		name: "zstd", minLevel: 1, maxLevel: 22, defLevel: DefaultZstdLevel,
		newEncoder: func(level int) (encoder, error) {
			// Concurrency 1: one response is one stream, encoded on the
			// handler's goroutine; the default (GOMAXPROCS) starts
			// goroutines and double-buffers every block.
			return zstd.NewWriter(nil,
				zstd.WithEncoderConcurrency(1),
				zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
				zstd.WithWindowSize(zstdWindow),
				zstd.WithZeroFrames(true))
		},
	},
	{
		name: "br", minLevel: 0, maxLevel: 11, defLevel: DefaultBrotliLevel,
		newEncoder: func(level int) (encoder, error) {
			return brotli.NewWriterOptions(nil, brotli.WriterOptions{Quality: level, LGWin: brotliLGWin}), nil
		},
	},
	{
		name: "gzip", minLevel: 1, maxLevel: 9, defLevel: DefaultGzipLevel,
		newEncoder: func(level int) (encoder, error) {
			w, err := gzip.NewWriterLevel(nil, level)
			if err != nil {
				return nil, err
			}
			return w, nil
		},
	},
}

func codecByName(name string) *codec {
	for i := range codecs {
		if codecs[i].name == name {
			return &codecs[i]
		}
	}
	return nil
}

// sink is the io.Writer a pooled encoder writes to. Pointing the encoder at
// the sink instead of the ResponseWriter lets release drop the reference to
// the finished response without a second Reset. It also gathers the
// encoder's many small writes into blocks of up to sinkSize: net/http
// sends each write of a response without a length as its own chunk of at
// most 2 KiB, so a 30 KiB gzip body went out as ~15 chunks in ~8 socket
// writes (bench/compress.sh); now it is one.
type sink struct {
	w   io.Writer
	buf []byte
	err error
}

const sinkSize = 32 << 10

func (s *sink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if len(s.buf)+len(p) > sinkSize {
		if err := s.flush(); err != nil {
			return 0, err
		}
	}
	if len(p) >= sinkSize {
		n, err := s.w.Write(p)
		if err != nil {
			s.err = err
		}
		return n, err
	}
	s.buf = append(s.buf, p...)
	return len(p), nil
}

// flush hands the gathered bytes to the ResponseWriter.
func (s *sink) flush() error {
	if s.err != nil || len(s.buf) == 0 {
		return s.err
	}
	_, s.err = s.w.Write(s.buf)
	s.buf = s.buf[:0]
	return s.err
}

// pooledEncoder is an encoder with its sink; both travel through the pool.
type pooledEncoder struct {
	enc  encoder
	sink sink
}

// encoderPool hands out encoders of one algorithm at one level.
type encoderPool struct {
	codec *codec
	level int
	pool  sync.Pool
}

// get returns an encoder reset to write a new stream to w.
func (p *encoderPool) get(w io.Writer) *pooledEncoder {
	pe, _ := p.pool.Get().(*pooledEncoder)
	if pe == nil {
		// Levels were validated in New, so this cannot fail.
		enc, err := p.codec.newEncoder(p.level)
		if err != nil {
			panic("compress: " + p.codec.name + ": " + err.Error())
		}
		pe = &pooledEncoder{enc: enc}
	}
	if pe.sink.buf == nil {
		pe.sink.buf = make([]byte, 0, sinkSize)
	}
	pe.sink.w, pe.sink.buf, pe.sink.err = w, pe.sink.buf[:0], nil
	pe.enc.Reset(&pe.sink)
	return pe
}

// put returns pe to the pool. The caller must have closed the stream, or
// abandoned it; the next get resets it either way.
func (p *encoderPool) put(pe *pooledEncoder) {
	pe.sink.w = nil
	p.pool.Put(pe)
}

// newPool returns a Compressor's pool for an algorithm and level. It
// builds one encoder at once, so a level the library refuses fails at
// config load, not in the first request. Each Compressor (one per
// location) owns its pools: no state is shared between configs.
func newPool(c *codec, level int) (*encoderPool, error) {
	enc, err := c.newEncoder(level)
	if err != nil {
		return nil, fmt.Errorf("compress: %s level %d: %w", c.name, level, err)
	}
	p := &encoderPool{codec: c, level: level}
	p.pool.Put(&pooledEncoder{enc: enc})
	return p, nil
}

// copyBufPool holds the buffers ReadFrom uses to feed an encoder.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
