package compress

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// readFromRecorder is a ResponseRecorder with net/http's io.ReaderFrom,
// remembering what reached it, as the sendfile path would see it.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	sources []io.Reader
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.sources = append(r.sources, src)
	return io.Copy(struct{ io.Writer }{r.ResponseRecorder}, src)
}

// sendFile serves a file the way static does: Content-Length, then
// io.CopyN, which reaches the writer's ReadFrom.
func sendFile(path, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		fi, _ := f.Stat()
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
		io.CopyN(w, f, fi.Size())
	}
}

// TestReadFrom_SendfilePassThrough: a large file that is not compressed
// reaches the underlying ReaderFrom with the *os.File still inside, so
// net/http can use sendfile(2).
func TestReadFrom_SendfilePassThrough(t *testing.T) {
	dir := t.TempDir()
	content := htmlPage(1 << 20)
	path := filepath.Join(dir, "big")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ctype, ae string
	}{
		{"type not allowed", "application/octet-stream", "gzip"},
		{"no Accept-Encoding", "text/html", ""},
		{"coding refused", "text/html", "gzip;q=0"},
	}
	c := mustNew(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
			c.Wrap(sendFile(path, tc.ctype)).ServeHTTP(rec, get("/big", tc.ae))
			if len(rec.sources) != 1 {
				t.Fatalf("underlying ReadFrom called %d times, want 1", len(rec.sources))
			}
			lr, ok := rec.sources[0].(*io.LimitedReader)
			if !ok {
				t.Fatalf("ReadFrom got %T, want io.CopyN's *io.LimitedReader", rec.sources[0])
			}
			if _, ok := lr.R.(*os.File); !ok {
				t.Fatalf("ReadFrom's reader wraps %T, want *os.File (sendfile)", lr.R)
			}
			if !bytes.Equal(rec.Body.Bytes(), content) || rec.Header().Get("Content-Encoding") != "" {
				t.Error("body changed")
			}
		})
	}
}

// TestReadFrom_DoesNotBypassEncoder: when compressing, copying a file
// into the writer goes through the encoder, never to the underlying
// ReadFrom.
func TestReadFrom_DoesNotBypassEncoder(t *testing.T) {
	dir := t.TempDir()
	content := htmlPage(1 << 20)
	path := filepath.Join(dir, "page.html")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustNew(t, Options{})
	for _, alg := range allAlgorithms {
		t.Run(alg, func(t *testing.T) {
			rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
			c.Wrap(sendFile(path, "text/html")).ServeHTTP(rec, get("/page.html", alg))
			if len(rec.sources) != 0 {
				t.Fatalf("underlying ReadFrom called: encoder bypassed")
			}
			if rec.Header().Get("Content-Encoding") != alg {
				t.Fatalf("Content-Encoding = %q", rec.Header().Get("Content-Encoding"))
			}
			if !bytes.Equal(decode(t, alg, rec.Body.Bytes()), content) {
				t.Error("body does not round-trip")
			}
		})
	}
}

// TestReadFrom_UnknownLength: ReadFrom without Content-Length buffers up
// to the minimum, then decides; short sources wait for the handler's end.
func TestReadFrom_UnknownLength(t *testing.T) {
	page := htmlPage(64 << 10)
	c := mustNew(t, Options{})
	for _, size := range []int{10, DefaultMinLength - 1, DefaultMinLength, len(page)} {
		for _, ae := range []string{"br", ""} {
			t.Run(fmt.Sprintf("%d/%q", size, ae), func(t *testing.T) {
				rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
				c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					w.(io.ReaderFrom).ReadFrom(bytes.NewReader(page[:size]))
					w.Write([]byte("<!-- end -->"))
				})).ServeHTTP(rec, get("/", ae))
				want := append(append([]byte(nil), page[:size]...), "<!-- end -->"...)
				enc := rec.Header().Get("Content-Encoding")
				wantEnc := ""
				if size+len("<!-- end -->") >= DefaultMinLength {
					wantEnc = ae
				}
				if enc != wantEnc {
					t.Errorf("Content-Encoding = %q, want %q", enc, wantEnc)
				}
				if !bytes.Equal(decode(t, enc, rec.Body.Bytes()), want) {
					t.Error("body does not round-trip")
				}
			})
		}
	}
}
