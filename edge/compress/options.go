package compress

import (
	"errors"
	"fmt"
	"strings"
)

// Defaults. The edge's config layer should use these same values, so that a
// location without compress_* directives behaves like Options{}.
const (
	// DefaultGzipLevel is 5, not nginx's gzip_comp_level default of 1: level
	// 5 is the setting most nginx guides recommend. On HTML it comes within
	// ~6% of level 9's size at a sixth of its CPU, and is ~14% smaller than
	// level 1.
	DefaultGzipLevel = 5
	// DefaultZstdLevel is zstd's own default level, 3, which the encoder
	// runs as its "default" speed (zstd.SpeedDefault).
	DefaultZstdLevel = 3
	// DefaultBrotliLevel is 4. brotli is the costliest coding on the fly:
	// at 4 this pure-Go encoder matches gzip-5's size on HTML at ~3x its
	// CPU; 5 is ~6% smaller again at another ~1.4x. Above that it is no
	// on-the-fly setting: serve brotli-11 as precompressed sidecars.
	DefaultBrotliLevel = 4
	// DefaultMinLength is the smallest body compressed by default. A
	// response under ~1 KiB fits in one TCP segment with its headers either
	// way, so compressing it saves no round trip and costs CPU plus 10-20
	// bytes of framing; nginx's 20 bytes compresses nearly everything,
	// Caddy uses 512, Akamai 860.
	DefaultMinLength = 1024
	// MaxMinLength bounds MinLength: bodies of unknown length are buffered
	// up to MinLength before the decision, per request.
	MaxMinLength = 1 << 20
)

// DefaultAlgorithms is the preference order used when Options.Algorithms is
// empty, matching the design's `compress zstd br gzip;`: zstd is the
// cheapest for its size, br is what browsers without zstd prefer, gzip is
// the universal fallback. The client's q-values still win over this order.
// Treat it as read-only.
var DefaultAlgorithms = []string{"zstd", "br", "gzip"}

// DefaultTypes is the MIME allow-list used when Options.Types is empty:
// textual formats and the binary ones that are not compressed already.
// Left out on purpose: images other than SVG (JPEG, PNG, WebP, AVIF are
// already compressed), font/woff and font/woff2 (compressed containers),
// audio, video, archives, and application/octet-stream (unknown, often
// already compressed). Treat it as read-only.
var DefaultTypes = []string{
	"text/*",                        // html, css, plain, csv, javascript, xml, markdown, event-stream
	"application/json",              //
	"application/*+json",            // ld+json, manifest+json, problem+json, geo+json
	"application/javascript",        //
	"application/x-javascript",      // legacy spelling still sent by some apps
	"application/xml",               //
	"application/*+xml",             // rss+xml, atom+xml, xhtml+xml
	"application/wasm",              // WebAssembly compresses to ~30-40%
	"image/svg+xml",                 // SVG is XML text
	"image/x-icon",                  // .ico files are mostly uncompressed bitmaps
	"font/ttf",                      // TrueType and OpenType are uncompressed tables
	"font/otf",                      //
	"application/vnd.ms-fontobject", // EOT: usually uncompressed
}

// Options configure a Compressor. The zero value is valid and means all the
// defaults.
type Options struct {
	// Algorithms lists the content codings to offer, in the server's
	// preference order; a subset of "zstd", "br" and "gzip". The order only
	// breaks ties between codings the client weights equally. Empty means
	// DefaultAlgorithms.
	Algorithms []string

	// Levels sets the compression level per algorithm; an algorithm absent
	// from the map gets its default. gzip: 1-9 (default 5). zstd: 1-22 in
	// zstd's own scale (default 3); the encoder has four speeds, so 1-2 run
	// as "fastest", 3-5 "default", 6-9 "better", 10-22 "best". br: 0-11
	// (default 4).
	Levels map[string]int

	// MinLength is the smallest body, in bytes, that is compressed.
	// Responses with a smaller Content-Length are sent as they are; bodies
	// of unknown length are buffered up to MinLength before deciding (a
	// handler that flushes earlier is streaming, and is compressed from the
	// flush on). Zero means DefaultMinLength; a negative value means no
	// minimum (any non-empty body). At most MaxMinLength.
	MinLength int64

	// Types is the allow-list of media types to compress, matched against
	// Content-Type without its parameters, case-insensitively. An entry is
	// an exact type ("application/json"), a whole top-level type
	// ("text/*"), a structured-syntax suffix ("application/*+json"), "*/*"
	// for everything, or "default", which stands for DefaultTypes so a
	// list can extend them. Empty means DefaultTypes.
	Types []string
}

// errNoAlgorithms is returned when Algorithms resolves to an empty list.
var errNoAlgorithms = errors.New("compress: no algorithms")

// withDefaults returns o with every empty field set to its default. It
// does not check anything; validate does.
func (o Options) withDefaults() Options {
	if len(o.Algorithms) == 0 {
		o.Algorithms = DefaultAlgorithms
	}
	if o.MinLength == 0 {
		o.MinLength = DefaultMinLength
	}
	if o.MinLength < 0 {
		o.MinLength = 0
	}
	if len(o.Types) == 0 {
		o.Types = DefaultTypes
	}
	return o
}

// validate checks an Options that withDefaults has filled.
func (o Options) validate() error {
	if len(o.Algorithms) == 0 {
		return errNoAlgorithms
	}
	seen := make(map[string]bool, len(o.Algorithms))
	for _, name := range o.Algorithms {
		if codecByName(name) == nil {
			return fmt.Errorf("compress: unknown algorithm %q (want zstd, br or gzip)", name)
		}
		if seen[name] {
			return fmt.Errorf("compress: algorithm %q listed twice", name)
		}
		seen[name] = true
	}
	for name, level := range o.Levels {
		c := codecByName(name)
		if c == nil {
			return fmt.Errorf("compress: level for unknown algorithm %q (want zstd, br or gzip)", name)
		}
		if level < c.minLevel || level > c.maxLevel {
			return fmt.Errorf("compress: %s level %d out of range %d-%d", name, level, c.minLevel, c.maxLevel)
		}
	}
	if o.MinLength > MaxMinLength {
		return fmt.Errorf("compress: min length %d above the maximum %d", o.MinLength, MaxMinLength)
	}
	for _, t := range o.Types {
		if t == "default" {
			continue
		}
		if err := checkTypePattern(t); err != nil {
			return err
		}
	}
	return nil
}

// checkTypePattern accepts "type/subtype", "type/*", "type/*+suffix" and
// "*/*".
func checkTypePattern(t string) error {
	main, sub, ok := strings.Cut(t, "/")
	bad := !ok || main == "" || sub == "" ||
		strings.ContainsAny(t, " \t;,") || strings.Count(t, "/") != 1 ||
		(main == "*" && sub != "*") ||
		(strings.Contains(sub, "*") && sub != "*" && !(strings.HasPrefix(sub, "*+") && len(sub) > 2 && !strings.Contains(sub[1:], "*")))
	if bad {
		return fmt.Errorf("compress: bad type pattern %q (want type/subtype, type/*, type/*+suffix or */*)", t)
	}
	return nil
}
