package compress

import (
	"mime"
	"net/http"
	"path"
	"sync"
)

// Compressor holds one location's compression settings, built once at
// config load. It is safe for concurrent use and owns no goroutines or
// files, so it has no Close.
type Compressor struct {
	names     []string       // offered codings, server preference order
	pools     []*encoderPool // same order as names
	encHdr    [][]string     // prepared Content-Encoding values, same order
	minLength int64          // 0: any non-empty body
	types     []typePattern
	bufPool   sync.Pool // *[]byte of cap bufCap, for deciding unknown lengths
	bufCap    int
}

// New builds a Compressor: defaults for empty fields, then validation.
func New(opts Options) (*Compressor, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Compressor{minLength: opts.MinLength}
	for _, name := range opts.Algorithms {
		cd := codecByName(name)
		level, ok := opts.Levels[name]
		if !ok {
			level = cd.defLevel
		}
		p, err := newPool(cd, level)
		if err != nil {
			return nil, err
		}
		c.names = append(c.names, name)
		c.pools = append(c.pools, p)
		c.encHdr = append(c.encHdr, []string{name})
	}
	for _, t := range opts.Types {
		if t == "default" {
			for _, d := range DefaultTypes {
				c.types = append(c.types, parseTypePattern(d))
			}
			continue
		}
		c.types = append(c.types, parseTypePattern(t))
	}
	// The buffer holds the body until MinLength is reached, and at least
	// the 512 bytes net/http's content sniffing looks at.
	c.bufCap = int(max(c.minLength, 512))
	c.bufPool.New = func() any { b := make([]byte, 0, c.bufCap); return &b }
	return c, nil
}

// Algorithms returns the offered codings in preference order.
func (c *Compressor) Algorithms() []string { return append([]string(nil), c.names...) }

// Wrap returns next with compression applied to its responses. Use it
// around any handler: static, proxy, app, respond.
func (c *Compressor) Wrap(next http.Handler) http.Handler {
	return &handler{c: c, next: next}
}

// handler is Compressor.Wrap's result.
type handler struct {
	c    *Compressor
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Upgrades (WebSocket over HTTP/1.1 or extended CONNECT) carry a
	// different protocol after the handshake; never touch them.
	if r.Method == http.MethodConnect || len(r.Header["Upgrade"]) > 0 {
		h.next.ServeHTTP(w, r)
		return
	}
	cw := &responseWriter{rw: w, c: h.c, req: r}
	h.next.ServeHTTP(cw, r)
	// Not deferred: after a panic the half-written response is abandoned
	// (net/http closes the connection) and the encoder is left to the GC.
	cw.finish()
}

// allowedType reports whether a media type (no parameters) is on the
// allow-list.
func (c *Compressor) allowedType(mt string) bool {
	if mt == "" {
		return false
	}
	for i := range c.types {
		if c.types[i].match(mt) {
			return true
		}
	}
	return false
}

// negotiate returns the index of the coding to use for r, or -1.
func (c *Compressor) negotiate(r *http.Request) int {
	return negotiate(r.Header["Accept-Encoding"], c.names)
}

// guessType is the media type for a 304, which carries no Content-Type:
// the one the request path's extension suggests, or "".
func guessType(r *http.Request) string {
	ext := path.Ext(r.URL.Path)
	if ext == "" {
		return ""
	}
	return mediaType(mime.TypeByExtension(ext))
}

var _ http.Handler = (*handler)(nil)
