package static

import (
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// condFixture: hello.txt with a known mtime, and its ETag.
func condFixture(t *testing.T, cfg CacheConfig) (*Handler, string) {
	t.Helper()
	root, _ := tree(t)
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(root, "hello.txt"), mt, mt))
	must(t, os.Chtimes(filepath.Join(root, "range.txt"), mt, mt))
	h := newTestHandler(t, Options{Root: root}, cfg)
	return h, do(h, "GET", "/hello.txt").Header().Get("ETag")
}

const (
	lastMod = "Mon, 06 May 2024 07:08:09 GMT"
	before  = "Sun, 05 May 2024 00:00:00 GMT"
	after   = "Tue, 07 May 2024 00:00:00 GMT"
)

// TestServe_Preconditions runs the RFC 9110 §13.2.2 table: each header on
// its own and the precedence between them.
func TestServe_Preconditions(t *testing.T) {
	for _, m := range cacheModes {
		h, etag := condFixture(t, m.cfg)
		cases := []struct {
			name   string
			method string
			hdr    []string
			want   int
		}{
			{"IfNoneMatch_304", "GET", []string{"If-None-Match", etag}, 304},
			{"IfNoneMatch_List_304", "GET", []string{"If-None-Match", `"x", ` + etag}, 304},
			{"IfNoneMatch_Weak_304", "GET", []string{"If-None-Match", "W/" + etag}, 304},
			{"IfNoneMatch_Star_304", "GET", []string{"If-None-Match", "*"}, 304},
			{"IfNoneMatch_Other_200", "GET", []string{"If-None-Match", `"other"`}, 200},
			{"IfNoneMatch_HEAD_304", "HEAD", []string{"If-None-Match", etag}, 304},
			{"IfMatch_Match_200", "GET", []string{"If-Match", etag}, 200},
			{"IfMatch_Star_200", "GET", []string{"If-Match", "*"}, 200},
			{"IfMatch_Other_412", "GET", []string{"If-Match", `"other"`}, 412},
			{"IfMatch_Weak_412", "GET", []string{"If-Match", "W/" + etag}, 412},
			{"IfModifiedSince_Same_304", "GET", []string{"If-Modified-Since", lastMod}, 304},
			{"IfModifiedSince_After_304", "GET", []string{"If-Modified-Since", after}, 304},
			{"IfModifiedSince_Before_200", "GET", []string{"If-Modified-Since", before}, 200},
			{"IfModifiedSince_Invalid_200", "GET", []string{"If-Modified-Since", "yesterday"}, 200},
			{"IfUnmodifiedSince_Before_412", "GET", []string{"If-Unmodified-Since", before}, 412},
			{"IfUnmodifiedSince_After_200", "GET", []string{"If-Unmodified-Since", after}, 200},
			// Precedence (RFC 9110 §13.2.2).
			{"IfMatch_Beats_IfUnmodifiedSince_200", "GET", []string{"If-Match", etag, "If-Unmodified-Since", before}, 200},
			{"IfNoneMatch_Beats_IfModifiedSince_200", "GET", []string{"If-None-Match", `"other"`, "If-Modified-Since", after}, 200},
			{"IfNoneMatch_Beats_IfModifiedSince_304", "GET", []string{"If-None-Match", etag, "If-Modified-Since", before}, 304},
			{"IfMatch_Fails_Before_IfNoneMatch_412", "GET", []string{"If-Match", `"other"`, "If-None-Match", etag}, 412},
		}
		for _, c := range cases {
			w := do(h, c.method, "/hello.txt", c.hdr...)
			if w.Code != c.want {
				t.Errorf("%s %s: got %d, want %d", m.name, c.name, w.Code, c.want)
				continue
			}
			switch c.want {
			case 304:
				if w.Body.Len() != 0 || w.Header().Get("ETag") != etag || w.Header().Get("Content-Type") != "" {
					t.Errorf("%s %s: 304 with body %q headers %v", m.name, c.name, w.Body.String(), w.Header())
				}
			case 200:
				if c.method == "GET" && w.Body.String() != "hello world" {
					t.Errorf("%s %s: body %q", m.name, c.name, w.Body.String())
				}
			}
		}
	}
}

// TestServe_Range covers single, suffix, open-ended, clamped, multiple,
// unsatisfiable and ignored Range headers, and If-Range.
func TestServe_Range(t *testing.T) {
	const body = "0123456789abcdefghij" // range.txt
	for _, m := range cacheModes {
		h, _ := condFixture(t, m.cfg)
		etag := do(h, "GET", "/range.txt").Header().Get("ETag")
		cases := []struct {
			name      string
			hdr       []string
			want      int
			wantBody  string
			wantRange string
		}{
			{"Single_206", []string{"Range", "bytes=2-5"}, 206, "2345", "bytes 2-5/20"},
			{"Suffix_206", []string{"Range", "bytes=-3"}, 206, "hij", "bytes 17-19/20"},
			{"OpenEnded_206", []string{"Range", "bytes=15-"}, 206, "fghij", "bytes 15-19/20"},
			{"Clamped_206", []string{"Range", "bytes=18-100"}, 206, "ij", "bytes 18-19/20"},
			{"SuffixLarger_206", []string{"Range", "bytes=-100"}, 206, body, "bytes 0-19/20"},
			{"UnitCase_206", []string{"Range", "Bytes=0-0"}, 206, "0", "bytes 0-0/20"},
			{"Unsatisfiable_416", []string{"Range", "bytes=20-30"}, 416, "", "bytes */20"},
			{"SuffixZero_416", []string{"Range", "bytes=-0"}, 416, "", "bytes */20"},
			{"PartlySatisfiable_206", []string{"Range", "bytes=30-40, 1-2"}, 206, "12", "bytes 1-2/20"},
			{"Malformed_Ignored_200", []string{"Range", "bytes=abc"}, 200, body, ""},
			{"Reversed_Ignored_200", []string{"Range", "bytes=5-2"}, 200, body, ""},
			{"OtherUnit_Ignored_200", []string{"Range", "items=0-1"}, 200, body, ""},
			{"Signed_Ignored_200", []string{"Range", "bytes=+1-2"}, 200, body, ""},
			{"Overlapping_Ignored_200", []string{"Range", "bytes=0-15,0-15"}, 200, body, ""},
			{"IfRange_ETag_206", []string{"Range", "bytes=0-1", "If-Range", etag}, 206, "01", "bytes 0-1/20"},
			{"IfRange_Stale_200", []string{"Range", "bytes=0-1", "If-Range", `"stale"`}, 200, body, ""},
			{"IfRange_Weak_200", []string{"Range", "bytes=0-1", "If-Range", "W/" + etag}, 200, body, ""},
			{"IfRange_Date_206", []string{"Range", "bytes=0-1", "If-Range", lastMod}, 206, "01", "bytes 0-1/20"},
			{"IfRange_OtherDate_200", []string{"Range", "bytes=0-1", "If-Range", after}, 200, body, ""},
		}
		for _, c := range cases {
			w := do(h, "GET", "/range.txt", c.hdr...)
			if w.Code != c.want || (c.want != 416 && w.Body.String() != c.wantBody) || w.Header().Get("Content-Range") != c.wantRange {
				t.Errorf("%s %s: %d %q Content-Range %q; want %d %q %q", m.name, c.name,
					w.Code, w.Body.String(), w.Header().Get("Content-Range"), c.want, c.wantBody, c.wantRange)
			}
			if c.want == 206 && w.Header().Get("Content-Length") != strconv.Itoa(len(c.wantBody)) {
				t.Errorf("%s %s: Content-Length %q", m.name, c.name, w.Header().Get("Content-Length"))
			}
		}
	}
}

// TestServe_Range_Multipart_206: several ranges come back as
// multipart/byteranges with a correct Content-Length.
func TestServe_Range_Multipart_206(t *testing.T) {
	for _, m := range cacheModes {
		h, _ := condFixture(t, m.cfg)
		w := do(h, "GET", "/range.txt", "Range", "bytes=0-1,5-6,-2")
		mt, params, err := mime.ParseMediaType(w.Header().Get("Content-Type"))
		if w.Code != 206 || err != nil || mt != "multipart/byteranges" {
			t.Fatalf("%s: %d %q", m.name, w.Code, w.Header().Get("Content-Type"))
		}
		if w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
			t.Errorf("%s: Content-Length %q, body %d", m.name, w.Header().Get("Content-Length"), w.Body.Len())
		}
		mr := multipart.NewReader(w.Body, params["boundary"])
		want := []struct{ body, rng string }{{"01", "bytes 0-1/20"}, {"56", "bytes 5-6/20"}, {"ij", "bytes 18-19/20"}}
		for i := 0; ; i++ {
			p, err := mr.NextPart()
			if err == io.EOF {
				if i != len(want) {
					t.Errorf("%s: %d parts", m.name, i)
				}
				break
			}
			if err != nil || i >= len(want) {
				t.Fatalf("%s: part %d: %v", m.name, i, err)
			}
			b, _ := io.ReadAll(p)
			if string(b) != want[i].body || p.Header.Get("Content-Range") != want[i].rng ||
				p.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("%s: part %d = %q %v", m.name, i, b, p.Header)
			}
		}
		// RFC 9110 §14.2: range handling is defined for GET only.
		hw := do(h, "HEAD", "/range.txt", "Range", "bytes=0-1,5-6")
		if hw.Code != 200 || hw.Body.Len() != 0 || hw.Header().Get("Content-Length") != "20" {
			t.Errorf("%s: HEAD multipart = %d body %d", m.name, hw.Code, hw.Body.Len())
		}
	}
}
