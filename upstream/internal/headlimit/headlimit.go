// Package headlimit bounds how much an upstream may send before its
// response head is parsed. http.ReadResponse has no limit of its own, so
// without one an upstream streaming endless headers would exhaust memory
// (and a client would be handed megabytes of them).
package headlimit

import (
	"fmt"
	"io"
)

// Max bounds the status line and headers of a reply, as net/http's
// DefaultMaxHeaderBytes does for requests.
const Max = 1 << 20

// ErrTooLarge is the read error once Max bytes were read without the head
// ending.
var ErrTooLarge = fmt.Errorf("response head exceeds %d bytes", Max)

// Reader fails reads once N bytes have been read; N < 0 disables it, which
// is how the body that follows the head is read.
type Reader struct {
	R io.Reader
	N int64
}

func (l *Reader) Read(p []byte) (int, error) {
	if l.N < 0 {
		return l.R.Read(p)
	}
	if l.N == 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > l.N {
		p = p[:l.N]
	}
	n, err := l.R.Read(p)
	l.N -= int64(n)
	return n, err
}
