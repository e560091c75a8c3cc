package uwsgi

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// ReadResponse accepts what uWSGI writes and rejects what it never would.
func TestReadResponse(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		raw      string
		status   int
		proto    string
		header   map[string][]string
		body     string
		trailer  map[string]string
		headErr  error  // errors.Is target for a head failure
		headText string // substring of a head failure
		bodyErr  error  // errors.Is target for a body read failure
	}{{
		name:   "content-length body",
		raw:    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhelloTRAILING",
		status: 200, proto: "HTTP/1.1", body: "hello",
		header: map[string][]string{"Content-Type": {"text/plain"}},
	}, {
		name:   "HTTP/1.0 reply read to EOF",
		raw:    "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nstreamed until close",
		status: 200, proto: "HTTP/1.0", body: "streamed until close",
	}, {
		name:   "HTTP/1.1 without length reads to EOF (uWSGI streaming a generator)",
		raw:    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nchunk-0\nchunk-1\n",
		status: 200, body: "chunk-0\nchunk-1\n",
	}, {
		name:   "status line without reason phrase",
		raw:    "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
		status: 404,
	}, {
		name:   "HTTP/2.0 echoed from SERVER_PROTOCOL",
		raw:    "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		status: 200, proto: "HTTP/2.0", body: "ok",
	}, {
		name:   "repeated Set-Cookie kept apart",
		raw:    "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
		status: 200,
		header: map[string][]string{"Set-Cookie": {"a=1; Path=/", "b=2"}},
	}, {
		name:   "304 has no body even with a Content-Length",
		raw:    "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 42\r\n\r\n",
		status: 304, body: "",
		header: map[string][]string{"Etag": {`"v1"`}},
	}, {
		name:   "204 has no body",
		raw:    "HTTP/1.1 204 No Content\r\n\r\nignored",
		status: 204, body: "",
	}, {
		name:   "HEAD reply has no body",
		method: "HEAD",
		raw:    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
		status: 200, body: "",
	}, {
		name:   "chunked body with a trailer",
		raw:    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n",
		status: 200, body: "hello, world",
		trailer: map[string]string{"X-Sum": "12"},
	}, {
		name:    "bad chunk size",
		raw:     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
		status:  200,
		bodyErr: errAnyError,
	}, {
		name:    "body shorter than Content-Length",
		raw:     "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
		status:  200,
		bodyErr: io.ErrUnexpectedEOF,
	}, {
		name:    "empty reply",
		raw:     "",
		headErr: errNoResponse,
	}, {
		name:    "cut inside HTTP/",
		raw:     "HTT",
		headErr: io.ErrUnexpectedEOF,
	}, {
		name:    "cut inside the headers",
		raw:     "HTTP/1.1 200 OK\r\nContent-Type: te",
		headErr: io.ErrUnexpectedEOF,
	}, {
		name:     "CGI-style Status header is not a uwsgi reply",
		raw:      "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n",
		headErr:  errNotHTTP,
		headText: `"Status: 200 OK\r"`,
	}, {
		name:    "binary garbage",
		raw:     "\x00\x10\x00\x00\xff\xfe",
		headErr: errNotHTTP,
	}, {
		name:     "lower-case protocol name",
		raw:      "http/1.1 200 OK\r\n\r\n",
		headErr:  errNotHTTP,
		headText: "does not start with an HTTP status line",
	}, {
		name:     "bad status code",
		raw:      "HTTP/1.1 2xx OK\r\n\r\n",
		headText: "malformed HTTP status code",
	}, {
		name:     "bad version",
		raw:      "HTTP/x 200 OK\r\n\r\n",
		headText: "malformed HTTP version",
	}, {
		name:     "conflicting Content-Length headers (smuggling)",
		raw:      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		headText: "Content-Length",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, "/", nil)
			resp, err := ReadResponse(bufio.NewReader(strings.NewReader(tt.raw)), req)
			if tt.headErr != nil || tt.headText != "" {
				if err == nil {
					t.Fatalf("ReadResponse succeeded with status %d, want an error", resp.StatusCode)
				}
				if tt.headErr != nil && !errors.Is(err, tt.headErr) {
					t.Errorf("err = %v, want errors.Is %v", err, tt.headErr)
				}
				if !strings.Contains(err.Error(), tt.headText) {
					t.Errorf("err = %v, want it to contain %q", err, tt.headText)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadResponse: %v", err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.proto != "" && resp.Proto != tt.proto {
				t.Errorf("proto = %q, want %q", resp.Proto, tt.proto)
			}
			for k, want := range tt.header {
				if got := resp.Header.Values(k); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			body, err := io.ReadAll(resp.Body)
			if tt.bodyErr != nil {
				if err == nil || (tt.bodyErr != errAnyError && !errors.Is(err, tt.bodyErr)) {
					t.Fatalf("body read err = %v, want %v", err, tt.bodyErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if string(body) != tt.body {
				t.Errorf("body = %q, want %q", body, tt.body)
			}
			for k, want := range tt.trailer {
				if got := resp.Trailer.Get(k); got != want {
					t.Errorf("trailer %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// errAnyError marks a case where any body error will do.
var errAnyError = errors.New("any error")

// A request's method reaches the parser: 1xx replies parse as themselves
// so RoundTrip can skip them.
func TestReadResponse_Informational(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"))
	req := httptest.NewRequest("POST", "/", nil)
	for _, want := range []int{http.StatusContinue, http.StatusCreated} {
		resp, err := ReadResponse(br, req)
		if err != nil {
			t.Fatalf("ReadResponse: %v", err)
		}
		if resp.StatusCode != want {
			t.Fatalf("status = %d, want %d", resp.StatusCode, want)
		}
	}
}
