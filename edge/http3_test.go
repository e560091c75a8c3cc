package edge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/tandem-server/tandem/conf"
)

const http3SiteConf = `
tls_storage {{DIR}}/tls;
access_log {{DIR}}/access.log;
shutdown_timeout 1s;
site a.test {
    listen 127.0.0.1:0;
    tls {{DIR}}/a.crt {{DIR}}/a.key;
    http3 on;
    root {{DIR}}/www;
    location / { static; }
}
site b.test {
    listen 127.0.0.1:0;
    tls {{DIR}}/b.crt {{DIR}}/b.key;
    return 200 "b";
}
`

// startHTTP3 starts http3SiteConf (or config) with certificates for
// a.test and b.test and a static file www/hello.txt.
func startHTTP3(t *testing.T, config string) (*Server, string, *testPKI) {
	t.Helper()
	pki := newTestPKI(t, "test CA")
	files := merge(pki.files(t, "a", "a.test"), pki.files(t, "b", "b.test"),
		map[string]string{"www/hello.txt": "hello over QUIC\n"})
	s, dir := startTLS(t, config, files)
	return s, dir, pki
}

// quicAddr returns the bound UDP address serving HTTP/3 for the
// configured address addr, "" when there is none.
func quicAddr(s *Server, addr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.quic[addr]; q != nil {
		return q.conn.LocalAddr().String()
	}
	return ""
}

// h3Client speaks only HTTP/3, trusting roots and sending serverName as
// SNI.
func h3Client(t *testing.T, roots *x509.CertPool, serverName string) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}
	t.Cleanup(func() { _ = tr.Close() })
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// h3Refused reports whether an HTTP/3 request to addr fails. A closed UDP
// port gives no answer QUIC reacts to, so a short timeout stands for it.
func h3Refused(t *testing.T, roots *x509.CertPool, addr string) bool {
	t.Helper()
	c := h3Client(t, roots, "a.test")
	c.Timeout = 500 * time.Millisecond
	_, err := tlsFetch(t, c, "https://"+addr+"/hello.txt", "")
	return err != nil
}

// reloadWith parses config (with {{DIR}} replaced) and reloads s with it.
func reloadWith(t *testing.T, s *Server, dir, config string) error {
	t.Helper()
	cfg, err := conf.Parse(filepath.Join(dir, "t.conf"), []byte(strings.ReplaceAll(config, "{{DIR}}", dir)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return s.Reload(cfg)
}

// An http3 site is served over QUIC on the UDP twin of its TLS address:
// a static file comes back whole, as HTTP/3.0, through the same handler
// chain (the access log records the protocol).
func TestHTTP3_ServesSiteOverQUIC(t *testing.T) {
	s, dir, pki := startHTTP3(t, http3SiteConf)
	udp := quicAddr(s, "127.0.0.1:0")
	if udp == "" {
		t.Fatal("no UDP socket for the http3 address")
	}
	if tcp := s.boundAddr("127.0.0.1:0"); udp != tcp {
		t.Errorf("UDP socket on %s, want the TCP socket's port %s", udp, tcp)
	}
	r := mustFetch(t, h3Client(t, pki.pool, "a.test"), "https://"+udp+"/hello.txt", "")
	if r.resp.StatusCode != 200 || r.body != "hello over QUIC\n" {
		t.Fatalf("got %d %q", r.resp.StatusCode, r.body)
	}
	if r.resp.Proto != "HTTP/3.0" || r.resp.ProtoMajor != 3 {
		t.Errorf("protocol %q, want HTTP/3.0", r.resp.Proto)
	}
	if got := r.resp.Header.Get("Alt-Svc"); got != "" {
		t.Errorf("an HTTP/3 response advertises Alt-Svc %q; only TCP ones need to", got)
	}
	_ = s.logs.Close()
	b, err := os.ReadFile(filepath.Join(dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "GET /hello.txt HTTP/3.0") {
		t.Errorf("access log lacks the HTTP/3 request:\n%s", b)
	}
}

// HTTPS responses over TCP of an http3 site carry Alt-Svc naming the UDP
// port; a site without http3 on the same address does not advertise it.
func TestHTTP3_AltSvcOnTCPResponses(t *testing.T) {
	s, _, pki := startHTTP3(t, http3SiteConf)
	_, port, _ := net.SplitHostPort(quicAddr(s, "127.0.0.1:0"))
	tcp := s.boundAddr("127.0.0.1:0")
	for _, proto := range []string{"h2", "http/1.1"} {
		c := httpsClient(t, pki.pool, "a.test", func(c *tls.Config) { c.NextProtos = []string{proto} })
		r := mustFetch(t, c, "https://"+tcp+"/hello.txt", "a.test")
		want := `h3=":` + port + `"; ma=86400`
		if got := r.resp.Header.Get("Alt-Svc"); got != want {
			t.Errorf("over %s: Alt-Svc %q, want %q", r.resp.Proto, got, want)
		}
	}
	r := mustFetch(t, httpsClient(t, pki.pool, "b.test", nil), "https://"+tcp+"/", "b.test")
	if r.body != "b" || r.resp.Header.Get("Alt-Svc") != "" {
		t.Errorf("b.test (no http3): %q with Alt-Svc %q, want none", r.body, r.resp.Header.Get("Alt-Svc"))
	}
}

// With the configured port 0, the UDP socket takes the TCP socket's port
// when it is free, and its own port otherwise; Alt-Svc names the real one.
func TestHTTP3_PortZeroFallsBackToOwnPort(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	taken, err := net.ListenPacket("udp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c, err := listenUDP("127.0.0.1:0", tcp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.LocalAddr().String() == tcp.Addr().String() {
		t.Fatal("bound a UDP port that is taken")
	}
	if _, err := listenUDP("127.0.0.1:"+strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port), nil); err == nil {
		t.Error("a configured, taken UDP port was not reported")
	}
}

// A UDP port that cannot be bound fails Start with an error naming the
// address, and leaves no TCP socket behind.
func TestHTTP3_BindFailureNamesAddress(t *testing.T) {
	port := freePort(t)
	taken, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	pki := newTestPKI(t, "test CA")
	s, _ := newTestServer(t, strings.ReplaceAll(http3SiteConf, "127.0.0.1:0", "127.0.0.1:"+strconv.Itoa(port)),
		merge(pki.files(t, "a", "a.test"), pki.files(t, "b", "b.test"), map[string]string{"www/hello.txt": "x"}))
	err = s.Start()
	want := fmt.Sprintf("listen udp 127.0.0.1:%d: bind: address already in use", port)
	if err == nil || err.Error() != want {
		t.Fatalf("Start: %v, want %q", err, want)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("the TCP socket was left open: %v", err)
	}
	ln.Close()
}

// A reload that keeps http3 keeps the UDP socket serving; one that turns
// it off closes the socket (HTTP/3 fails, Alt-Svc stops) while HTTPS over
// TCP goes on; turning it on again opens a socket.
func TestHTTP3_Reload(t *testing.T) {
	s, dir, pki := startHTTP3(t, http3SiteConf)
	udp := quicAddr(s, "127.0.0.1:0")
	tcp := s.boundAddr("127.0.0.1:0")

	changed := strings.Replace(http3SiteConf, `return 200 "b"`, `return 200 "b2"`, 1)
	if err := reloadWith(t, s, dir, changed); err != nil {
		t.Fatal(err)
	}
	if got := quicAddr(s, "127.0.0.1:0"); got != udp {
		t.Fatalf("UDP socket %s after a reload that keeps http3, want %s kept", got, udp)
	}
	if r := mustFetch(t, h3Client(t, pki.pool, "b.test"), "https://"+udp+"/", "b.test"); r.body != "b2" {
		t.Errorf("over HTTP/3 after the reload: %q, want the new config's b2", r.body)
	}

	off := strings.Replace(changed, "http3 on;", "http3 off;", 1)
	if err := reloadWith(t, s, dir, off); err != nil {
		t.Fatal(err)
	}
	if got := quicAddr(s, "127.0.0.1:0"); got != "" {
		t.Fatalf("UDP socket %s still listed after http3 off", got)
	}
	waitUDPFree(t, udp)
	if !h3Refused(t, pki.pool, udp) {
		t.Error("HTTP/3 request succeeded after http3 off")
	}
	r := mustFetch(t, httpsClient(t, pki.pool, "a.test", nil), "https://"+tcp+"/hello.txt", "a.test")
	if r.resp.StatusCode != 200 || r.resp.Header.Get("Alt-Svc") != "" {
		t.Errorf("over TCP after http3 off: %d, Alt-Svc %q", r.resp.StatusCode, r.resp.Header.Get("Alt-Svc"))
	}

	if err := reloadWith(t, s, dir, http3SiteConf); err != nil {
		t.Fatal(err)
	}
	udp = quicAddr(s, "127.0.0.1:0")
	if r := mustFetch(t, h3Client(t, pki.pool, "a.test"), "https://"+udp+"/hello.txt", ""); r.resp.StatusCode != 200 {
		t.Errorf("HTTP/3 after turning it back on: %d", r.resp.StatusCode)
	}
}

// Shutdown closes the UDP socket with the TCP ones.
func TestHTTP3_ShutdownClosesUDPSocket(t *testing.T) {
	s, _, pki := startHTTP3(t, http3SiteConf)
	udp := quicAddr(s, "127.0.0.1:0")
	c := h3Client(t, pki.pool, "a.test")
	mustFetch(t, c, "https://"+udp+"/hello.txt", "")
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	pc, err := net.ListenPacket("udp", udp)
	if err != nil {
		t.Fatalf("UDP port still bound after Shutdown: %v", err)
	}
	pc.Close()
	if !h3Refused(t, pki.pool, udp) {
		t.Error("HTTP/3 request succeeded after Shutdown")
	}
}

// waitUDPFree waits until addr's UDP port can be bound, that is until a
// drained socket is closed.
func waitUDPFree(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			pc.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("UDP %s still bound: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A wildcard TLS address covering a specific one gets one UDP socket,
// opened because the specific address's site wants HTTP/3; each QUIC
// connection gets the certificate and sites of the address it was made
// to, as on TCP (so the wildcard's site is reachable over QUIC too, though
// only the http3 site advertises it).
func TestHTTP3_WildcardCoversSpecificAddress(t *testing.T) {
	pki := newTestPKI(t, "test CA")
	port := strconv.Itoa(freePort(t))
	s, _ := startTLS(t, strings.ReplaceAll(`
tls_storage {{DIR}}/tls;
site specific.test { listen 127.0.0.1:PORT; tls {{DIR}}/s.crt {{DIR}}/s.key; http3 on; return 200 "specific"; }
site wild.test { listen :PORT; tls {{DIR}}/w.crt {{DIR}}/w.key; return 200 "wild"; }
`, "PORT", port), merge(pki.files(t, "s", "specific.test"), pki.files(t, "w", "wild.test")))
	if got := quicAddr(s, ":"+port); got == "" {
		t.Fatal("no UDP socket on the wildcard address")
	}
	// 127.0.0.2 is loopback on Linux but not the specific address.
	for ip, name := range map[string]string{"127.0.0.1": "specific", "127.0.0.2": "wild"} {
		r := mustFetch(t, h3Client(t, pki.pool, name+".test"), "https://"+net.JoinHostPort(ip, port)+"/", name+".test")
		if r.body != name {
			t.Errorf("via %s over HTTP/3: %q, want %q", ip, r.body, name)
		}
	}
}
