// Command tlshandshake measures how many new TLS connections a server
// completes per second: C goroutines each loop over
//
//	dial TCP → full TLS 1.3 handshake (ALPN http/1.1) →
//	GET PATH with Connection: close → read the status line → close
//
// until the duration is up, and it prints handshakes per second and the
// latency of TCP connect + handshake (p50, p99, max).
//
//	go run ./bench/tlshandshake -addr 127.0.0.1:8443 -ca cert.pem -c 32 -d 5s
//
// By default no session is ever resumed: every dial gets a fresh tls.Config
// with session tickets disabled, so each connection pays for the key
// exchange, the server's signature and the client's certificate check.
// With -resume every goroutine keeps one client session cache, so after its
// first connection it resumes (TLS 1.3 PSK with (EC)DHE) and the output
// says how many connections did.
//
// A connection counts only when the server answered with a 2xx status line:
// the server has then processed the client's Finished and the request, so
// its side of the handshake is complete too. The last line is
// machine-readable (key=value) for bench/tls.sh.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type result struct {
	ok, resumed int
	hs          []time.Duration // TCP connect + TLS handshake, per connection
	errs        map[string]int  // error kind → count
	firstErr    map[string]string
}

func main() {
	addr := flag.String("addr", "", "server address HOST:PORT (required)")
	caFile := flag.String("ca", "", "PEM file with the CA (or self-signed) certificate to verify the server against; empty = -insecure")
	insecure := flag.Bool("insecure", false, "do not verify the server's certificate")
	serverName := flag.String("servername", "", "TLS server name (SNI and verification); default: the host of -addr (an IP sends no SNI)")
	conns := flag.Int("c", 32, "concurrent connections (goroutines)")
	dur := flag.Duration("d", 5*time.Second, "how long to start new connections")
	resume := flag.Bool("resume", false, "resume sessions (a session cache per goroutine) instead of full handshakes")
	path := flag.String("path", "/", "request path")
	groups := flag.String("groups", "x25519", "key exchange groups, comma-separated, in preference order: x25519, p256, p384, x25519mlkem768; \"default\" = Go's defaults")
	timeout := flag.Duration("timeout", 5*time.Second, "per-connection timeout (dial to status line)")
	flag.Parse()

	if *addr == "" || *conns < 1 || *dur <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		fatalf("-addr: %v", err)
	}
	if *serverName == "" {
		*serverName = host
	}
	var roots *x509.CertPool
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fatalf("%v", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fatalf("%s: no PEM certificate found", *caFile)
		}
	} else if !*insecure {
		fatalf("give -ca CERT or -insecure")
	}
	curves, err := parseGroups(*groups)
	if err != nil {
		fatalf("-groups: %v", err)
	}

	// The template is copied for every dial (Clone), so nothing learnt on
	// one connection — above all a session ticket — reaches the next unless
	// -resume hands a cache over on purpose.
	base := &tls.Config{
		ServerName:         *serverName,
		RootCAs:            roots,
		InsecureSkipVerify: *insecure,
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		NextProtos:         []string{"http/1.1"},
		CurvePreferences:   curves,
	}
	if !*resume {
		base.SessionTicketsDisabled = true
		base.ClientSessionCache = nil
	}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *serverName + "\r\nUser-Agent: tlshandshake\r\nConnection: close\r\n\r\n")

	results := make([]result, *conns)
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(*dur)
	for i := range results {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			r.errs = map[string]int{}
			r.firstErr = map[string]string{}
			var cache tls.ClientSessionCache
			if *resume {
				cache = tls.NewLRUClientSessionCache(4)
			}
			for time.Now().Before(stop) {
				cfg := base.Clone()
				cfg.ClientSessionCache = cache
				hs, resumed, kind, err := oneConn(*addr, cfg, req, *timeout)
				if err != nil {
					r.errs[kind]++
					if _, seen := r.firstErr[kind]; !seen {
						r.firstErr[kind] = err.Error()
					}
					continue
				}
				r.ok++
				if resumed {
					r.resumed++
				}
				r.hs = append(r.hs, hs)
			}
		}(&results[i])
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	ok, resumed := 0, 0
	errs := map[string]int{}
	firstErr := map[string]string{}
	for _, r := range results {
		ok += r.ok
		resumed += r.resumed
		all = append(all, r.hs...)
		for k, n := range r.errs {
			errs[k] += n
			if _, seen := firstErr[k]; !seen {
				firstErr[k] = r.firstErr[k]
			}
		}
	}
	slices.Sort(all)
	nerr := 0
	for _, n := range errs {
		nerr += n
	}

	mode := "full handshakes (no resumption)"
	if *resume {
		mode = "resumed handshakes (per-goroutine session cache)"
	}
	rate := float64(ok) / elapsed.Seconds()
	fmt.Printf("tlshandshake %s: %d connections, %s, %.2fs, groups %s\n", *addr, *conns, mode, elapsed.Seconds(), *groups)
	fmt.Printf("  completed   %d (%.1f/s), resumed %d, errors %d\n", ok, rate, resumed, nerr)
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		fmt.Printf("  error %-9s %d, first: %s\n", k, errs[k], firstErr[k])
	}
	fmt.Printf("  connect+handshake latency: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		ms(pct(all, 50)), ms(pct(all, 99)), ms(pct(all, 100)))
	fmt.Printf("result hs_per_s=%.1f ok=%d resumed=%d errors=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f seconds=%.3f\n",
		rate, ok, resumed, nerr, ms(pct(all, 50)), ms(pct(all, 99)), ms(pct(all, 100)), elapsed.Seconds())
	if ok == 0 {
		os.Exit(1)
	}
}

// oneConn makes one connection and returns the connect+handshake time,
// whether the session was resumed, and on failure the kind of error
// (dial, handshake, alpn, write, read, status) with the error itself.
func oneConn(addr string, cfg *tls.Config, req []byte, timeout time.Duration) (time.Duration, bool, string, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	raw, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, false, "dial", err
	}
	defer raw.Close()
	raw.SetDeadline(deadline)
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return 0, false, "handshake", err
	}
	hs := time.Since(t0)
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS13 {
		return 0, false, "handshake", fmt.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(st.Version))
	}
	if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" {
		return 0, false, "alpn", fmt.Errorf("server chose ALPN %q", st.NegotiatedProtocol)
	}
	if _, err := c.Write(req); err != nil {
		return 0, false, "write", err
	}
	line, err := bufio.NewReaderSize(c, 512).ReadString('\n')
	if err != nil {
		return 0, false, "read", err
	}
	// "HTTP/1.1 200 OK\r\n"
	if f := strings.Fields(line); len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") || len(f[1]) != 3 || f[1][0] != '2' {
		return 0, false, "status", errors.New("status line " + strings.TrimSpace(line))
	}
	return hs, st.DidResume, "", nil
}

func parseGroups(s string) ([]tls.CurveID, error) {
	if s == "default" || s == "" {
		return nil, nil
	}
	var ids []tls.CurveID
	for _, name := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "x25519":
			ids = append(ids, tls.X25519)
		case "p256", "p-256", "secp256r1":
			ids = append(ids, tls.CurveP256)
		case "p384", "p-384", "secp384r1":
			ids = append(ids, tls.CurveP384)
		case "x25519mlkem768":
			ids = append(ids, tls.X25519MLKEM768)
		default:
			return nil, fmt.Errorf("unknown group %q", name)
		}
	}
	return ids, nil
}

// pct is the p-th percentile (nearest rank) of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tlshandshake: "+format+"\n", args...)
	os.Exit(2)
}
