package static

import (
	"context"
	"net/http"
)

// PacketHinter is a client connection that can hold its next write back
// until more of the response follows, so that headers and the start of
// the body share packets instead of leaving in a short one of their own.
// nginx gets the same from tcp_nopush. The edge's plain TCP connections
// implement it; the handler finds them through the request's context
// (WithPacketHinter).
//
// MoreFollows promises that the next write on the connection is not the
// response's last. The connection holds that write (MSG_MORE) and sends
// it with the next one, or at the end of the response at the latest.
type PacketHinter interface {
	MoreFollows()
}

type hinterKey struct{}

// WithPacketHinter returns ctx carrying h; meant for http.Server's
// ConnContext, so every request on the connection can reach it.
func WithPacketHinter(ctx context.Context, h PacketHinter) context.Context {
	return context.WithValue(ctx, hinterKey{}, h)
}

// hintMoreFollows tells r's connection that the response's first write
// will be followed by another. Only HTTP/1 writes go straight to the
// connection; HTTP/2 frames are written by the connection's own
// goroutine.
func hintMoreFollows(r *http.Request) {
	if r.ProtoMajor != 1 {
		return
	}
	if h, ok := r.Context().Value(hinterKey{}).(PacketHinter); ok {
		h.MoreFollows()
	}
}

// coalesceMin is the smallest in-memory body worth a hint. net/http
// buffers the headers and body in 4 KiB; a response that overflows it is
// written in two pieces, and a file's headers take 250-500 bytes. A hint
// on a response that fits after all costs one setsockopt at its end
// (the push), never a delay.
const coalesceMin = 4<<10 - 512

// sniffLen is how much net/http's response.ReadFrom copies itself (for
// Content-Type sniffing) before handing the rest to the connection.
const sniffLen = 512
