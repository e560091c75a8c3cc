package conf

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// maxExpires is what `expires max;` means: ten years, as nginx.
const maxExpires = 10 * 365 * 24 * time.Hour

// claimHandler enforces one handler per block. static and try_files go
// together (try_files is static serving with a fallback); return, redirect
// and app exclude everything else, because they answer without looking at
// files and a second handler would silently never run.
func (b *builder) claimHandler(sc *scope, n *node) bool {
	fileish := func(name string) bool { return name == "static" || name == "try_files" }
	if sc.handler != "" && !(fileish(sc.handler) && fileish(n.Name)) {
		b.errs.add(n.Pos, "%q conflicts with %q at %s; a block has one handler", n.Name, sc.handler, sc.handlerPos)
		return false
	}
	if sc.handler == "" {
		sc.handler, sc.handlerPos = n.Name, n.Pos
	}
	return true
}

func buildRoot(b *builder, sc *scope, n *node) {
	sc.route.Root = n.path(n.Args[0])
	sc.route.pos.root = n.Args[0].Pos
}

func buildAlias(b *builder, sc *scope, n *node) {
	sc.route.Alias = n.path(n.Args[0])
	sc.route.pos.alias = n.Args[0].Pos
}

func buildIndex(b *builder, sc *scope, n *node) {
	for _, a := range n.Args {
		if a.Value == "" || strings.Contains(a.Value, "/") {
			b.argErr(n, a, fmt.Errorf("expected a file name without \"/\", got %q", a.Value))
			return
		}
	}
	sc.route.Index = argValues(n.Args)
}

// buildTryFiles reads `try_files ARG... FALLBACK;`. The fallback may be
// @name (checked against the site's named locations later), =CODE, or a URI.
func buildTryFiles(b *builder, sc *scope, n *node) {
	last := n.Args[len(n.Args)-1]
	if code, ok := strings.CutPrefix(last.Value, "="); ok {
		if _, err := parseStatus(code, 100, 599); err != nil {
			b.argErr(n, last, err)
			return
		}
	} else if !strings.HasPrefix(last.Value, "@") && !strings.HasPrefix(last.Value, "/") {
		b.argErr(n, last, fmt.Errorf("the last argument is the fallback: expected @name, =CODE or a URI starting with \"/\", got %q", last.Value))
		return
	}
	if !b.claimHandler(sc, n) {
		return
	}
	sc.route.TryFiles = argValues(n.Args)
	sc.route.TryFilesPos = n.Pos
	sc.route.pos.tryFallback = last.Pos
}

func buildStatic(b *builder, sc *scope, n *node) {
	if b.claimHandler(sc, n) {
		sc.route.Static = true
		sc.route.pos.static = n.Pos
	}
}

// buildReturn reads `return CODE [URL|TEXT];`; redirect codes need a URL.
func buildReturn(b *builder, sc *scope, n *node) {
	code, err := parseStatus(n.Args[0].Value, 100, 599)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return
	}
	r := &Return{Pos: n.Pos, Code: code}
	if len(n.Args) == 2 {
		r.Text = n.Args[1].Value
	}
	if isRedirectCode(code) && r.Text == "" {
		b.errs.add(n.Pos, "\"return %d\" needs a URL to redirect to", code)
		return
	}
	if b.claimHandler(sc, n) {
		sc.route.Return = r
	}
}

// buildRedirect reads `redirect URL [CODE|permanent|temporary];`, sugar
// for return with a 3xx code (default 302, as nginx's rewrite ... redirect).
func buildRedirect(b *builder, sc *scope, n *node) {
	r := &Return{Pos: n.Pos, Code: 302, Text: n.Args[0].Value}
	if r.Text == "" {
		b.argErr(n, n.Args[0], fmt.Errorf("expected a URL, got \"\""))
		return
	}
	if len(n.Args) == 2 {
		a := n.Args[1]
		switch a.Value {
		case "permanent":
			r.Code = 301
		case "temporary":
			r.Code = 302
		default:
			code, err := parseStatus(a.Value, 300, 399)
			if err != nil || !isRedirectCode(code) {
				b.argErr(n, a, fmt.Errorf("expected 301, 302, 303, 307, 308, permanent or temporary, got %q", a.Value))
				return
			}
			r.Code = code
		}
	}
	if b.claimHandler(sc, n) {
		sc.route.Return = r
	}
}

// buildExpires reads `expires DURATION|off|max;`; off is stored as a
// negative duration so "unset" (nil) and "explicitly off" differ.
func buildExpires(b *builder, sc *scope, n *node) {
	var d time.Duration
	switch v := n.Args[0].Value; v {
	case "off":
		d = -1
	case "max":
		d = maxExpires
	default:
		var err error
		if d, err = parseDuration(v); err != nil {
			b.argErr(n, n.Args[0], fmt.Errorf("expected a duration like 30d, off or max, got %q", v))
			return
		}
	}
	sc.route.Expires = &d
}

// onOff parses an on|off argument into a fresh *bool.
func onOff(b *builder, n *node) *bool {
	v, err := parseOnOff(n.Args[0].Value)
	if err != nil {
		b.argErr(n, n.Args[0], err)
		return nil
	}
	return &v
}

func buildAutoindex(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		sc.route.Autoindex = v
	}
}

func buildFollowSymlinks(b *builder, sc *scope, n *node) {
	if v := onOff(b, n); v != nil {
		sc.route.FollowSymlinks = v
	}
}

// buildHiddenFiles stores allow as true: HiddenFiles answers "may dot-files
// be served?".
func buildHiddenFiles(b *builder, sc *scope, n *node) {
	var allow bool
	switch n.Args[0].Value {
	case "allow":
		allow = true
	case "deny":
	default:
		b.argErr(n, n.Args[0], fmt.Errorf("expected deny or allow, got %q", n.Args[0].Value))
		return
	}
	sc.route.HiddenFiles = &allow
}

var encodings = []string{"zstd", "br", "gzip"}

// buildPrecompressed reads `precompressed off;` or `precompressed ALG...;`.
func buildPrecompressed(b *builder, sc *scope, n *node) {
	if n.Args[0].Value == "off" {
		if len(n.Args) > 1 {
			b.argErr(n, n.Args[1], fmt.Errorf("\"off\" must be the only argument"))
			return
		}
		sc.route.Precompressed, sc.route.PrecompressedSet = []string{}, true
		return
	}
	var algs []string
	for _, a := range n.Args {
		switch {
		case !slices.Contains(encodings, a.Value):
			b.argErr(n, a, fmt.Errorf("unknown encoding %q; expected zstd, br or gzip", a.Value))
			return
		case slices.Contains(algs, a.Value):
			b.argErr(n, a, fmt.Errorf("encoding %q is listed twice", a.Value))
			return
		}
		algs = append(algs, a.Value)
	}
	sc.route.Precompressed, sc.route.PrecompressedSet = algs, true
}

// buildErrorPage reads `error_page CODE... TARGET;` where TARGET is a URI,
// a full URL, or @name.
func buildErrorPage(b *builder, sc *scope, n *node) {
	target := n.Args[len(n.Args)-1]
	t := target.Value
	if !strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "@") &&
		!strings.HasPrefix(t, "http://") && !strings.HasPrefix(t, "https://") {
		b.argErr(n, target, fmt.Errorf("expected a URI starting with \"/\", a URL, or @name, got %q", t))
		return
	}
	if sc.route.ErrorPages == nil {
		sc.route.ErrorPages = map[int]string{}
		sc.route.pos.errorPages = map[int]errorPagePos{}
	}
	for _, a := range n.Args[:len(n.Args)-1] {
		code, err := parseStatus(a.Value, 300, 599)
		if err != nil {
			b.argErr(n, a, err)
			continue
		}
		if first, dup := sc.route.pos.errorPages[code]; dup {
			b.errs.add(a.Pos, "error_page for %d is already set at %s", code, first.code)
			continue
		}
		sc.route.ErrorPages[code] = t
		sc.route.pos.errorPages[code] = errorPagePos{code: a.Pos, target: target.Pos}
	}
}

func argValues(args []arg) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}
