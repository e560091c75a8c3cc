package uwsgi

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// encodeVars builds a vars block from key/value pairs, independently of
// AppendVars, so ParseVars is tested against the wire format itself.
func encodeVars(kv ...string) []byte {
	var b []byte
	for _, s := range kv {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

func varsOf(t *testing.T, r *http.Request) map[string]string {
	t.Helper()
	b, err := AppendVars(nil, r)
	if err != nil {
		t.Fatalf("AppendVars: %v", err)
	}
	vars, err := ParseVars(b)
	if err != nil {
		t.Fatalf("ParseVars(AppendVars(r)): %v", err)
	}
	return vars
}

// The standard vars follow nginx's uwsgi_params; headers become HTTP_*.
func TestAppendVars_CGIConventions(t *testing.T) {
	tests := []struct {
		name   string
		req    func() *http.Request
		want   map[string]string
		absent []string
	}{{
		name: "plain GET",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://example.com/a%20b?x=1&y=2", nil)
			r.RemoteAddr = "192.0.2.7:51234"
			return r
		},
		want: map[string]string{
			"REQUEST_METHOD": "GET", "REQUEST_URI": "/a%20b?x=1&y=2", "PATH_INFO": "/a b",
			"QUERY_STRING": "x=1&y=2", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "192.0.2.7",
			"REMOTE_PORT": "51234", "SERVER_NAME": "example.com", "SERVER_PORT": "80",
			"REQUEST_SCHEME": "http", "HTTP_HOST": "example.com",
		},
		absent: []string{"HTTPS", "CONTENT_LENGTH", "CONTENT_TYPE"},
	}, {
		name: "encoded slash stays encoded in REQUEST_URI only",
		req:  func() *http.Request { return httptest.NewRequest("GET", "/a%2Fb/c", nil) },
		want: map[string]string{"REQUEST_URI": "/a%2Fb/c", "PATH_INFO": "/a/b/c", "QUERY_STRING": ""},
	}, {
		name: "POST body length and type come once, not as HTTP_*",
		req: func() *http.Request {
			r := httptest.NewRequest("POST", "/form", strings.NewReader("a=b&c"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Content-Length", "999") // stale header: r.ContentLength is the framing
			r.Header.Set("Transfer-Encoding", "chunked")
			return r
		},
		want:   map[string]string{"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "5", "CONTENT_TYPE": "application/x-www-form-urlencoded"},
		absent: []string{"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"},
	}, {
		name: "TLS sets HTTPS and the https scheme and port",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "https://secure.example/", nil)
			r.TLS = &tls.ConnectionState{}
			return r
		},
		want: map[string]string{"HTTPS": "on", "REQUEST_SCHEME": "https", "SERVER_PORT": "443", "SERVER_NAME": "secure.example"},
	}, {
		name: "Host port when the listener is unknown",
		req:  func() *http.Request { return httptest.NewRequest("GET", "http://example.com:8443/", nil) },
		want: map[string]string{"SERVER_NAME": "example.com", "SERVER_PORT": "8443", "HTTP_HOST": "example.com:8443"},
	}, {
		name: "listener port wins over the Host port, as nginx's $server_port",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://example.com:8443/", nil)
			la := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000}
			return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
		},
		want: map[string]string{"SERVER_NAME": "example.com", "SERVER_PORT": "9000"},
	}, {
		name: "no Host: the listener's address names the server",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Host = ""
			la := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 8080}
			return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
		},
		want:   map[string]string{"SERVER_NAME": "::1", "SERVER_PORT": "8080"},
		absent: []string{"HTTP_HOST"},
	}, {
		name: "IPv6 host and peer",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://[2001:db8::1]:8080/", nil)
			r.RemoteAddr = "[2001:db8::2]:4444"
			return r
		},
		want: map[string]string{"SERVER_NAME": "2001:db8::1", "SERVER_PORT": "8080", "REMOTE_ADDR": "2001:db8::2", "REMOTE_PORT": "4444"},
	}, {
		name: "unix socket peer has no port",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "@"
			return r
		},
		want:   map[string]string{"REMOTE_ADDR": "@"},
		absent: []string{"REMOTE_PORT"},
	}, {
		name: "repeated header values join with a comma",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["X-Multi"] = []string{"a", "b, c"}
			r.Header["Accept-Language"] = []string{"fr"}
			return r
		},
		want: map[string]string{"HTTP_X_MULTI": "a, b, c", "HTTP_ACCEPT_LANGUAGE": "fr"},
	}, {
		name: "cookies join with a semicolon (RFC 6265 §5.4)",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["Cookie"] = []string{"a=1", "b=2; c=3"}
			return r
		},
		want: map[string]string{"HTTP_COOKIE": "a=1; b=2; c=3"},
	}, {
		name: "names differing only in case merge into one var",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header = http.Header{"X-Foo": {"1"}, "x-foo": {"2"}}
			return r
		},
		want: map[string]string{"HTTP_X_FOO": "1, 2"},
	}, {
		name: "Host comes from r.Host, never from a Host map entry",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "http://real.example/", nil)
			r.Header.Set("Host", "spoofed.example")
			return r
		},
		want: map[string]string{"HTTP_HOST": "real.example", "SERVER_NAME": "real.example"},
	}, {
		name: "Proxy header is dropped (httpoxy)",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Proxy", "http://evil.example:3128")
			return r
		},
		absent: []string{"HTTP_PROXY"},
	}, {
		name: "headers with underscores are dropped, dashed twins kept",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["X-Forwarded-For"] = []string{"203.0.113.9"}
			r.Header["X_Forwarded_For"] = []string{"10.0.0.1"}
			r.Header["X-Real_Ip"] = []string{"10.0.0.2"}
			return r
		},
		want:   map[string]string{"HTTP_X_FORWARDED_FOR": "203.0.113.9"},
		absent: []string{"HTTP_X_REAL_IP"},
	}, {
		name: "HTTP/2 protocol passes through",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
			return r
		},
		want: map[string]string{"SERVER_PROTOCOL": "HTTP/2.0"},
	}, {
		name: "unparsable protocol falls back to HTTP/1.1",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Proto = "SPDY/3"
			return r
		},
		want: map[string]string{"SERVER_PROTOCOL": "HTTP/1.1"},
	}, {
		name: "empty method means GET",
		req: func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Method = ""
			return r
		},
		want: map[string]string{"REQUEST_METHOD": "GET"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := varsOf(t, tt.req())
			for k, want := range tt.want {
				if got, ok := vars[k]; !ok || got != want {
					t.Errorf("%s = %q (present %v), want %q", k, got, ok, want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := vars[k]; ok {
					t.Errorf("%s = %q, want absent", k, v)
				}
			}
		})
	}
}

// fixedVars are the only names AppendVars sends that are not HTTP_*.
var fixedVars = map[string]bool{
	"REQUEST_METHOD": true, "REQUEST_URI": true, "PATH_INFO": true, "QUERY_STRING": true,
	"SERVER_PROTOCOL": true, "CONTENT_TYPE": true, "CONTENT_LENGTH": true, "REMOTE_ADDR": true,
	"REMOTE_PORT": true, "SERVER_NAME": true, "SERVER_PORT": true, "REQUEST_SCHEME": true, "HTTPS": true,
}

// checkVarNames fails when a var is neither a fixed CGI var nor HTTP_*:
// uWSGI obeys UWSGI_* vars (UWSGI_FILE loads and runs a file), so a client
// able to name a var could take over the app server.
func checkVarNames(t testing.TB, vars map[string]string) {
	t.Helper()
	for k := range vars {
		if strings.HasPrefix(k, "UWSGI") {
			t.Errorf("client input produced magic var %q", k)
		}
		if !fixedVars[k] && !strings.HasPrefix(k, "HTTP_") {
			t.Errorf("unexpected var %q", k)
		}
	}
}

// No client header, however spelled, yields a var named UWSGI_*.
func TestAppendVars_ClientHeadersNeverYieldUWSGIVars(t *testing.T) {
	names := []string{
		"UWSGI_FILE", "uwsgi-file", "UWSGI-SCRIPT", "Uwsgi-Scheme", "uwsgi_chdir", "UWSGI_SETENV",
		"UWSGI_APPID", "Uwsgi_Pyhome", "uwsgi", "Script-Name", "SCRIPT_NAME", "Https",
	}
	r := httptest.NewRequest("GET", "/", nil)
	for _, n := range names {
		r.Header[n] = []string{"/etc/passwd"}
	}
	vars := varsOf(t, r)
	checkVarNames(t, vars)
	// The dashed spellings are ordinary headers and arrive, prefixed.
	for _, k := range []string{"HTTP_UWSGI_FILE", "HTTP_UWSGI_SCRIPT", "HTTP_UWSGI_SCHEME", "HTTP_UWSGI", "HTTP_SCRIPT_NAME", "HTTP_HTTPS"} {
		if vars[k] != "/etc/passwd" {
			t.Errorf("%s = %q, want the header's value", k, vars[k])
		}
	}
	for _, k := range []string{"SCRIPT_NAME", "HTTPS", "HTTP_UWSGI_CHDIR", "HTTP_UWSGI_SETENV"} {
		if _, ok := vars[k]; ok {
			t.Errorf("%s present; underscore names must be dropped and HTTPS only come from TLS", k)
		}
	}
}

// Sizes that do not fit the 16-bit fields fail with ErrVarsTooLarge
// instead of a corrupt packet; callers turn that into 431.
func TestAppendVars_SizeLimits(t *testing.T) {
	withHeaders := func(h http.Header) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header = h
		return r
	}
	tests := []struct {
		name    string
		req     *http.Request
		tooBig  bool
		wantErr bool
	}{
		{"value just under the var limit fits", withHeaders(http.Header{"X-Big": {strings.Repeat("a", 60000)}}), false, false},
		{"value over 65535 bytes", withHeaders(http.Header{"X-Big": {strings.Repeat("a", MaxVarLen+1)}}), true, true},
		{"many headers over 64 KiB in total", withHeaders(manyHeaders(70, 1000)), true, true},
		{"many headers under 64 KiB in total", withHeaders(manyHeaders(50, 1000)), false, false},
		{"repeated values summing past the var limit", withHeaders(http.Header{"X-Rep": repeated(40, 2000)}), true, true},
		{"path over 65535 bytes", httptest.NewRequest("GET", "/"+strings.Repeat("p", MaxVarLen), nil), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := AppendVars(dst, tt.req)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrVarsTooLarge); got != tt.tooBig {
				t.Fatalf("errors.Is(err, ErrVarsTooLarge) = %v, want %v (err %v)", got, tt.tooBig, err)
			}
			if err != nil {
				if string(out) != "prefix" {
					t.Fatalf("on error dst changed to %d bytes", len(out))
				}
				return
			}
			if n := len(out) - len(dst); n > MaxVarsSize {
				t.Fatalf("block is %d bytes, over MaxVarsSize", n)
			}
			if _, err := ParseVars(out[len(dst):]); err != nil {
				t.Fatalf("ParseVars: %v", err)
			}
		})
	}
}

func manyHeaders(n, size int) http.Header {
	h := http.Header{}
	for i := range n {
		h.Set("X-H"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("v", size))
	}
	return h
}

func repeated(n, size int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = strings.Repeat("r", size)
	}
	return s
}

// Requests that cannot be encoded safely are refused, not mangled.
func TestAppendVars_RejectsInvalidRequests(t *testing.T) {
	tests := []struct {
		name string
		mod  func(r *http.Request)
	}{
		{"no URL", func(r *http.Request) { r.URL = nil }},
		{"method with a space", func(r *http.Request) { r.Method = "GET /x" }},
		{"header value with a newline", func(r *http.Request) { r.Header.Set("X-A", "a\r\nUWSGI_FILE: x") }},
		{"header value with NUL", func(r *http.Request) { r.Header.Set("X-A", "a\x00") }},
		{"Host with a slash", func(r *http.Request) { r.Host = "a/b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			tt.mod(r)
			if out, err := AppendVars(nil, r); err == nil {
				t.Fatalf("AppendVars succeeded with %d bytes, want an error", len(out))
			}
		})
	}
}

// ParseVars is strict: anything AppendVars would never produce is an error.
func TestParseVars(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    map[string]string
		wantErr string
	}{
		{"empty block", nil, map[string]string{}, ""},
		{"two vars", encodeVars("A", "1", "B", ""), map[string]string{"A": "1", "B": ""}, ""},
		{"binary value", encodeVars("K", "\x00\xff\n"), map[string]string{"K": "\x00\xff\n"}, ""},
		{"one byte", []byte{1}, nil, "truncated"},
		{"key longer than block", []byte{5, 0, 'a'}, nil, "truncated"},
		{"key without value", encodeVars("K"), nil, "truncated"},
		{"value longer than block", append(encodeVars("K"), 9, 0, 'v'), nil, "truncated"},
		{"empty key", encodeVars("", "v"), nil, "empty key"},
		{"repeated key", encodeVars("K", "1", "K", "2"), nil, "repeated"},
		{"over 64 KiB", encodeVars("K", strings.Repeat("v", 40000), "L", strings.Repeat("v", 40000)), nil, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVars(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVars: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d vars %q, want %q", len(got), got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// The packet header is modifier1 0, little-endian datasize, modifier2 0.
func TestAppendPacket_Header(t *testing.T) {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Pad", strings.Repeat("p", 300)) // datasize > 255 exercises both bytes
	p, err := appendPacket(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	if p[0] != 0 || p[3] != 0 {
		t.Fatalf("modifiers = %d, %d; want 0, 0", p[0], p[3])
	}
	if size := int(p[1]) | int(p[2])<<8; size != len(p)-4 || size <= 255 {
		t.Fatalf("datasize = %d, packet carries %d bytes", size, len(p)-4)
	}
}
