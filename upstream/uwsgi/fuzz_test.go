package uwsgi

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzParseVars: ParseVars never panics and re-encodes what it accepts;
// AppendVars output always parses back, carries the fuzzed method, path
// and header faithfully, and never contains a var a client could name
// outside HTTP_*.
func FuzzParseVars(f *testing.F) {
	f.Add(encodeVars("REQUEST_METHOD", "GET", "PATH_INFO", "/"), "GET", "/a%20b?x=1", "X-Test", "v")
	f.Add([]byte{}, "POST", "/", "UWSGI_FILE", "/etc/passwd")
	f.Add([]byte{1}, "", "/%2F", "uwsgi-file", "x")
	f.Add([]byte{0xff, 0xff, 'a'}, "PUT", "http://h/p?q", "Cookie", "a=1; b=2")
	f.Add(encodeVars("K", "1", "K", "2"), "GET /", "/\x00", "X-Bad", "a\r\nb")
	f.Add(encodeVars("", "v"), "OPTIONS", "*", "Content-Type", "text/plain")
	f.Add(encodeVars("A", strings.Repeat("v", 300)), "GET", "/"+strings.Repeat("p", 300), "Proxy", "http://evil")
	f.Fuzz(func(t *testing.T, block []byte, method, target, name, value string) {
		if vars, err := ParseVars(block); err == nil {
			again, err := ParseVars(encodeMap(vars))
			if err != nil || !maps.Equal(vars, again) {
				t.Fatalf("re-encoded vars differ: %v", err)
			}
		}

		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{
			Method: method, URL: u, Proto: "HTTP/1.1", Host: "example.com",
			Header: http.Header{name: {value}}, RemoteAddr: "192.0.2.1:1234",
		}
		b, err := AppendVars(nil, r)
		if err != nil {
			return
		}
		if len(b) > MaxVarsSize {
			t.Fatalf("vars block of %d bytes", len(b))
		}
		vars, err := ParseVars(b)
		if err != nil {
			t.Fatalf("ParseVars(AppendVars(r)): %v", err)
		}
		checkVarNames(t, vars)
		wantMethod := method
		if wantMethod == "" {
			wantMethod = "GET"
		}
		if vars["REQUEST_METHOD"] != wantMethod || vars["REQUEST_URI"] != u.RequestURI() || vars["QUERY_STRING"] != u.RawQuery {
			t.Fatalf("method/uri/query = %q %q %q from %q %q", vars["REQUEST_METHOD"], vars["REQUEST_URI"], vars["QUERY_STRING"], method, target)
		}
		if u.Path != "" && vars["PATH_INFO"] != u.Path {
			t.Fatalf("PATH_INFO = %q, want %q", vars["PATH_INFO"], u.Path)
		}
		if plainHeader(name) {
			key := "HTTP_" + strings.ReplaceAll(strings.ToUpper(name), "-", "_")
			if got, ok := vars[key]; !ok || got != value {
				t.Fatalf("%s = %q (present %v), want %q", key, got, ok, value)
			}
		}
	})
}

// plainHeader reports a header name AppendVars must pass through as HTTP_*.
func plainHeader(name string) bool {
	if !validToken(name) || strings.Contains(name, "_") {
		return false
	}
	switch http.CanonicalHeaderKey(name) {
	case "Content-Type", "Content-Length", "Transfer-Encoding", "Host", "Proxy":
		return false
	}
	return true
}

// encodeMap encodes vars in sorted order.
func encodeMap(vars map[string]string) []byte {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		kv = append(kv, k, vars[k])
	}
	return encodeVars(kv...)
}

// FuzzReadResponse: arbitrary replies never panic, and a body never
// yields more bytes than the reply held (nor any for bodiless statuses).
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), false)
	f.Add([]byte("HTTP/1.0 200\r\n\r\nto eof"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), false)
	f.Add([]byte("Status: 200 OK\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), false)
	f.Add([]byte("HTTP/"), false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		req := &http.Request{Method: method, URL: &url.URL{Path: "/"}, Header: http.Header{}}
		resp, err := ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, int64(len(data))+1))
		resp.Body.Close()
		if n > int64(len(data)) {
			t.Fatalf("body yielded %d bytes from a %d-byte reply", n, len(data))
		}
		if n > 0 && (head || resp.StatusCode == 204 || resp.StatusCode == 304 || resp.StatusCode/100 == 1) {
			t.Fatalf("status %d to %s has a %d-byte body", resp.StatusCode, method, n)
		}
	})
}
