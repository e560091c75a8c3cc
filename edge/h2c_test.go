package edge

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const h2cConf = `
shutdown_timeout 1s;
site a.test { listen 127.0.0.1:0 h2c; return 200 "a over $scheme"; }
site b.test { listen 127.0.0.2:0; return 200 "b"; }
`

// h2cClient speaks only cleartext HTTP/2 with prior knowledge; h1Client
// only HTTP/1.1.
func h2cClient(t *testing.T) *http.Client {
	return protoClient(t, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) })
}
func h1Client(t *testing.T) *http.Client {
	return protoClient(t, func(p *http.Protocols) { p.SetHTTP1(true) })
}

func protoClient(t *testing.T, set func(*http.Protocols)) *http.Client {
	var p http.Protocols
	set(&p)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// An address with the h2c flag accepts HTTP/2 with prior knowledge and
// still HTTP/1.1; an address without it does not speak cleartext HTTP/2.
func TestH2C_PriorKnowledge(t *testing.T) {
	s, _ := newTestServer(t, h2cConf, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	h2c, plain := "http://"+s.boundAddr("127.0.0.1:0")+"/", "http://"+s.boundAddr("127.0.0.2:0")+"/"

	r := mustFetch(t, h2cClient(t), h2c, "")
	if r.resp.ProtoMajor != 2 || r.body != "a over http" {
		t.Errorf("h2c address over h2c: %s %q, want HTTP/2.0", r.resp.Proto, r.body)
	}
	if r := mustFetch(t, h1Client(t), h2c, ""); r.resp.ProtoMajor != 1 || r.body != "a over http" {
		t.Errorf("h2c address over HTTP/1.1: %s %q", r.resp.Proto, r.body)
	}
	if r, err := tlsFetch(t, h2cClient(t), plain, ""); err == nil && r.resp.ProtoMajor == 2 {
		t.Errorf("an address without h2c answered HTTP/2: %s %q", r.resp.Proto, r.body)
	}
	if r := mustFetch(t, h1Client(t), plain, ""); r.body != "b" {
		t.Errorf("plain address over HTTP/1.1: %q", r.body)
	}
}

// h2c is a property of the socket: a reload keeps the socket as it was
// opened (a restart applies the change).
func TestH2C_FixedForAKeptSocket(t *testing.T) {
	s, dir := newTestServer(t, h2cConf, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	addr := "http://" + s.boundAddr("127.0.0.1:0") + "/"
	if err := reloadWith(t, s, dir, strings.Replace(h2cConf, " h2c;", ";", 1)); err != nil {
		t.Fatal(err)
	}
	if r := mustFetch(t, h2cClient(t), addr, ""); r.resp.ProtoMajor != 2 {
		t.Errorf("after a reload dropping h2c: %s, want the kept socket unchanged", r.resp.Proto)
	}
}
