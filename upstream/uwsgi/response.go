package uwsgi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// errNotHTTP reports a reply that does not begin with an HTTP status line:
// not a uWSGI app server, a protocol mix-up (an HTTP or FastCGI port), or
// a corrupt stream.
var errNotHTTP = errors.New("reply does not start with an HTTP status line")

// errNoResponse reports a connection closed before any reply byte.
var errNoResponse = errors.New("upstream closed the connection without a response")

// ReadResponse reads one uwsgi reply from br: uWSGI answers with an HTTP/1.x
// status line (it echoes SERVER_PROTOCOL, so HTTP/2.0 appears when the
// client spoke HTTP/2), headers and a body delimited by Content-Length,
// chunked Transfer-Encoding, or the end of the connection. A status line
// without a reason phrase is accepted. req supplies the method, so a reply
// to HEAD has no body; 1xx, 204 and 304 never have one.
//
// Garbage fails with an error saying what was found. The body reads from
// br; reading it past the head is the caller's business (closing it does
// not close the underlying connection).
func ReadResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	const prefix = "HTTP/"
	got, err := br.Peek(len(prefix))
	switch {
	case string(got) == prefix:
	case !isPrefix(got, prefix):
		return nil, fmt.Errorf("uwsgi: %w: got %.64q", errNotHTTP, peekLine(br))
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("uwsgi: read response head: %w", err)
	case len(got) == 0:
		return nil, fmt.Errorf("uwsgi: %w: %w", errNoResponse, io.ErrUnexpectedEOF)
	default:
		return nil, fmt.Errorf("uwsgi: reply ended inside the status line: %w", io.ErrUnexpectedEOF)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the status line was there, so the head is cut short
		}
		return nil, fmt.Errorf("uwsgi: read response head: %w", err)
	}
	return resp, nil
}

// isPrefix reports whether got is a proper prefix of prefix (Peek stopped
// short, so the reply may still be well-formed but cut off).
func isPrefix(got []byte, prefix string) bool {
	return len(got) < len(prefix) && string(got) == prefix[:len(got)]
}

// peekLine returns up to 64 buffered bytes of the first line, for an error
// message that shows what the upstream sent instead of a status line.
func peekLine(br *bufio.Reader) []byte {
	b, _ := br.Peek(min(64, br.Buffered()))
	for i, c := range b {
		if c == '\n' {
			return b[:i]
		}
	}
	return b
}
