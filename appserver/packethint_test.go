package appserver

import (
	"net/http/httptest"
	"testing"

	"github.com/tandem-server/tandem/edge/packethint"
)

// countingHinter records the hints a response gave its connection.
type countingHinter struct{ n int }

func (c *countingHinter) MoreFollows() { c.n++ }

// A buffered response too big for one net/http write hints the
// connection (so the head does not leave in a packet of its own); a small
// one, a HEAD and a 204 do not.
func TestPool_BufferedResponseHintsPackets(t *testing.T) {
	app := testConf(writeApp(t, `
def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/nocontent':
        start_response('204 No Content', [])
        return []
    size = 10000 if path == '/page' else 100
    start_response('200 OK', [('Content-Type', 'text/html')])
    return [b'x' * size]
`), true, 1)
	h := startHarness(t, app)
	for _, tc := range []struct {
		method, path string
		hints        int
	}{
		{"GET", "/page", 1},
		{"GET", "/small", 0},
		{"HEAD", "/page", 0},
		{"GET", "/nocontent", 0},
	} {
		var ch countingHinter
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req = req.WithContext(packethint.WithHinter(req.Context(), &ch))
		rec := httptest.NewRecorder()
		h.pool.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			t.Fatalf("%s %s: status %d", tc.method, tc.path, rec.Code)
		}
		if ch.n != tc.hints {
			t.Errorf("%s %s: %d hints, want %d", tc.method, tc.path, ch.n, tc.hints)
		}
		if tc.path == "/page" && tc.method == "GET" && rec.Body.Len() != 10000 {
			t.Errorf("page body %d bytes", rec.Body.Len())
		}
	}
}
