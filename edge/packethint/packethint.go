// Package packethint lets a handler tell the client's connection that a
// response is written in more than one piece, so that the first piece is
// held back (MSG_MORE) and leaves in the same packets as what follows,
// instead of in a short packet of its own that costs the client a wakeup.
// nginx gets the same from tcp_nopush.
//
// The edge's plain TCP connections implement Hinter and put themselves in
// each request's context (WithHinter, from http.Server.ConnContext); the
// static, app-server and proxy handlers call MoreFollows. It is a leaf
// package so that all of them can.
package packethint

import (
	"context"
	"net/http"
)

// Hinter is a client connection that can hold its next write back.
//
// MoreFollows promises that the next write on the connection is not the
// response's last. The connection holds that write and sends it with the
// next one, or at the end of the response at the latest, so a wrong
// promise costs a system call, never a delay.
type Hinter interface {
	MoreFollows()
}

type key struct{}

// WithHinter returns ctx carrying h; meant for http.Server's
// ConnContext, so every request on the connection can reach it.
func WithHinter(ctx context.Context, h Hinter) context.Context {
	return context.WithValue(ctx, key{}, h)
}

// MinBody is the smallest body worth a hint when the body is written in
// one Write: net/http buffers headers and body in 4 KiB and writes a
// response that overflows that buffer in two pieces, and headers take
// 250-500 bytes.
const MinBody = 4<<10 - 512

// MoreFollows tells r's connection that the response's first write will
// be followed by another. Only HTTP/1 writes go straight to the
// connection; HTTP/2 frames are written by the connection's own
// goroutine, and TLS connections carry no Hinter.
func MoreFollows(r *http.Request) {
	if r.ProtoMajor != 1 {
		return
	}
	if h, ok := r.Context().Value(key{}).(Hinter); ok {
		h.MoreFollows()
	}
}
