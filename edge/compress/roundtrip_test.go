package compress

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestRoundTrip: for every algorithm and level extreme, bodies written in
// uneven pieces (or copied with ReadFrom), larger than the encoder windows
// included, decode with the real decoders to the exact original.
func TestRoundTrip(t *testing.T) {
	small := htmlPage(3 << 10)
	large := htmlPage(1<<20 + 300<<10) // beyond twice the 512 KiB windows
	noise := make([]byte, 128<<10)
	rand.New(rand.NewSource(2)).Read(noise) // incompressible
	levels := map[string][]int{"gzip": {1, 5, 9}, "zstd": {1, 3, 22}, "br": {0, 4, 11}}
	for _, alg := range allAlgorithms {
		for _, level := range levels[alg] {
			bodies := map[string][]byte{"3KiB": small, "noise": noise}
			switch level {
			case codecByName(alg).defLevel:
				bodies["1.3MiB"] = large // the default level only: -race makes this slow
			case 11, 22:
				delete(bodies, "noise") // the slowest levels: short input only
			}
			c := mustNew(t, Options{Algorithms: []string{alg}, Levels: map[string]int{alg: level}})
			for name, b := range bodies {
				for _, viaReadFrom := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s-%d/%s/readfrom=%v", alg, level, name, viaReadFrom), func(t *testing.T) {
						rec := serve(c, func(w http.ResponseWriter, r *http.Request) {
							w.Header().Set("Content-Type", "application/json")
							if viaReadFrom {
								io.Copy(w, bytes.NewReader(b))
								return
							}
							rng := rand.New(rand.NewSource(3))
							for p := b; len(p) > 0; {
								n := min(1+rng.Intn(9000), len(p))
								w.Write(p[:n])
								p = p[n:]
							}
						}, get("/", alg))
						if rec.Header().Get("Content-Encoding") != alg {
							t.Fatalf("Content-Encoding = %q", rec.Header().Get("Content-Encoding"))
						}
						if out := decode(t, alg, rec.Body.Bytes()); !bytes.Equal(out, b) {
							t.Fatalf("decoded %d bytes, want %d identical", len(out), len(b))
						}
					})
				}
			}
		}
	}
}

// TestRoundTrip_ConcurrentPooled: many requests at once share pooled
// encoders without mixing streams (run with -race).
func TestRoundTrip_ConcurrentPooled(t *testing.T) {
	c := mustNew(t, Options{})
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(htmlPage(8<<10 + len(r.URL.Path)))
	})))
	defer srv.Close()
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			alg := allAlgorithms[i%3]
			path := fmt.Sprintf("/%0*d", i%7+1, 0)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			req.Header.Set("Accept-Encoding", alg)
			res, err := rawClient().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.Header.Get("Content-Encoding") != alg {
				t.Errorf("%s: Content-Encoding %q", path, res.Header.Get("Content-Encoding"))
				return
			}
			if !bytes.Equal(decode(t, alg, b), htmlPage(8<<10+len(path))) {
				t.Errorf("%s via %s: body mismatch", path, alg)
			}
		}(i)
	}
	wg.Wait()
}
