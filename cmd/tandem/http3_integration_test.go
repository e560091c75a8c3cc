package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

const http3Conf = `
tls_storage {{DIR}}/state/tls;
site localhost {
    listen 127.0.0.1:0;
    tls internal;
    http3 on;
    return 200 "over $scheme";
}
`

// HTTP/3 through the binary: a tls internal site with http3 on answers
// over QUIC on the UDP twin of its TLS address, advertises it in Alt-Svc
// over TCP, logs nothing outside the structured log (quic-go's own
// warnings included), and stops cleanly on SIGTERM.
func TestHTTP3_ThroughTheBinary(t *testing.T) {
	in := startTandem(t, http3Conf, nil)
	line := in.waitLog("listening for HTTP/3", 10*time.Second)
	var f struct {
		Addr string `json:"addr"`
	}
	if i := strings.IndexByte(line, '{'); i < 0 || json.Unmarshal([]byte(line[i:]), &f) != nil {
		t.Fatalf("HTTP/3 listening line without addr: %q", line)
	}
	rootPEM, _ := runCA(t, in.conf)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("tandem ca printed no certificate")
	}

	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}
	defer tr.Close()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + f.Addr + "/")
	if err != nil {
		t.Fatalf("HTTP/3 GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "over https" || resp.Proto != "HTTP/3.0" {
		t.Errorf("HTTP/3 GET: %d %s %q", resp.StatusCode, resp.Proto, body)
	}

	ttr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}, ForceAttemptHTTP2: true}
	defer ttr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: ttr, Timeout: 10 * time.Second}).Get("https://" + in.addrs[0] + "/")
	if err != nil {
		t.Fatalf("HTTPS GET: %v", err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(f.Addr)
	if want := `h3=":` + port + `"; ma=86400`; resp.Header.Get("Alt-Svc") != want {
		t.Errorf("Alt-Svc %q, want %q", resp.Header.Get("Alt-Svc"), want)
	}

	if code := in.stop(10 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	// The standard log package's "2006/01/02 15:04:05 " prefix marks a
	// line that bypassed the structured log.
	if stray := regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:`).FindString(in.logText()); stray != "" {
		t.Errorf("a line outside the structured log:\n%s", in.logText())
	}
}
