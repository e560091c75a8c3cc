package conf

import (
	"reflect"
	"testing"
)

// TestCompress_Inheritance pins how the compress directives land in the
// model: off by default; site lines are defaults for every location
// (named ones included), each setting inherited on its own and
// compress_level per algorithm; `compress off;` in a location wins.
func TestCompress_Inheritance(t *testing.T) {
	cfg := mustParse(t, `
site a {
    listen 80;
    root /www;
    compress zstd br gzip;
    compress_level gzip 6;
    compress_level br 5;
    compress_min_length 256;
    compress_types default application/X-NDJSON;
    location /plain/ { }
    location /own/ { compress gzip br; compress_level gzip 4; compress_types text/html; }
    location /off/ { compress off; }
    location /all/ { compress_min_length 0; compress_level zstd 19; }
    location @named { return 404; }
}
site b {
    listen 81;
    root /www;
    compress_level br 9;
    location /br/ { compress br; }
    location /none/ { }
}
site c { listen 82; root /www; }`)
	a := cfg.Sites[0]
	siteC := &Compress{
		Pos:        Pos{File: "/t/main.conf", Line: 5, Col: 5},
		Algorithms: []string{"zstd", "br", "gzip"},
		Levels:     map[string]int{"gzip": 6, "br": 5},
		MinLength:  256,
		Types:      []string{"default", "application/x-ndjson"},
	}
	if !reflect.DeepEqual(a.Route.Compress, siteC) {
		t.Errorf("site compress = %+v\nwant %+v (types lower-cased)", a.Route.Compress, siteC)
	}
	loc := func(s *Site, i int) *Compress { return s.Locations[i].Route.Compress }
	if c := loc(a, 0); !reflect.DeepEqual(c, siteC) || c == a.Route.Compress {
		t.Errorf("a plain location takes a copy of everything: %+v", c)
	}
	want := &Compress{
		Pos:        Pos{File: "/t/main.conf", Line: 11, Col: 22},
		Algorithms: []string{"gzip", "br"},
		Levels:     map[string]int{"gzip": 4, "br": 5},
		MinLength:  256,
		Types:      []string{"text/html"},
	}
	if c := loc(a, 1); !reflect.DeepEqual(c, want) {
		t.Errorf("own lines win, the rest (br's level, min length) from the site:\n got %+v\nwant %+v", c, want)
	}
	if c := loc(a, 2); c != nil {
		t.Errorf("compress off in a location: %+v, want nil", c)
	}
	if c := loc(a, 3); c == nil || c.MinLength != 0 || !reflect.DeepEqual(c.Levels, map[string]int{"zstd": 19, "gzip": 6, "br": 5}) {
		t.Errorf("compress_min_length 0 compresses everything; levels merge per algorithm: %+v", c)
	}
	if c := loc(a, 4); !reflect.DeepEqual(c, siteC) {
		t.Errorf("a named location inherits compression like any setting: %+v", c)
	}

	b := cfg.Sites[1]
	if b.Route.Compress != nil {
		t.Errorf("compress_level alone does not turn compression on: %+v", b.Route.Compress)
	}
	want = &Compress{
		Pos:        Pos{File: "/t/main.conf", Line: 20, Col: 21},
		Algorithms: []string{"br"},
		Levels:     map[string]int{"br": 9},
		MinLength:  defaultCompressMinLength,
		Types:      []string{"default"},
	}
	if c := loc(b, 0); !reflect.DeepEqual(c, want) {
		t.Errorf("a site-level compress_level is the default for a location's compress:\n got %+v\nwant %+v", c, want)
	}
	if c := loc(b, 1); c != nil {
		t.Errorf("no compress anywhere on the way: %+v, want nil", c)
	}
	if c := cfg.Sites[2].Route.Compress; c != nil {
		t.Errorf("compression is off by default: %+v", c)
	}
}

// TestCompress_Defaults: `compress ALG;` alone gets the documented
// defaults, and levels only for what was written.
func TestCompress_Defaults(t *testing.T) {
	cfg := mustParse(t, site("compress gzip;"))
	c := cfg.Sites[0].Route.Compress
	if c == nil || c.Levels != nil || c.MinLength != 1024 || !reflect.DeepEqual(c.Types, []string{"default"}) ||
		!reflect.DeepEqual(c.Algorithms, []string{"gzip"}) {
		t.Errorf("compress gzip; = %+v, want gzip, no levels, 1k, [default]", c)
	}
	// A level for an algorithm the block does not offer stays out of the
	// model (the site's br level below serves another location).
	cfg = mustParse(t, site("compress_level br 3;\ncompress gzip;\nlocation /b/ { compress br; }"))
	if c := cfg.Sites[0].Route.Compress; c.Levels != nil {
		t.Errorf("levels of algorithms not offered: %v", c.Levels)
	}
}

// TestCompress_Errors pins the message and position of every compress
// error. Site bodies start at line 4, column 1 (see site()).
func TestCompress_Errors(t *testing.T) {
	const f = "/t/main.conf:"
	cases := []struct {
		name, src string
		want      []string
	}{
		{"in main", "compress gzip;", []string{f + `1:1: "compress" is not allowed in main; allowed in: site, location`}},
		{"in app", "app x { wsgi a:b; compress_types text/html; }",
			[]string{f + `1:19: "compress_types" is not allowed in app; allowed in: site, location`}},
		{"no args", site("compress;"), []string{f + `4:1: "compress" takes at least 1 argument, got 0`}},
		{"unknown algorithm", site("compress zstd xz;"),
			[]string{f + `4:15: compress: unknown algorithm "xz"; expected zstd, br, gzip or off`}},
		{"deflate", site("compress deflate;"),
			[]string{f + `4:10: compress: unknown algorithm "deflate"; expected zstd, br, gzip or off`}},
		{"duplicate algorithm", site("compress gzip br gzip;"),
			[]string{f + `4:18: compress: algorithm "gzip" is listed twice`}},
		{"on", site("compress on;"),
			[]string{f + `4:10: compress: expected the codings to offer, as in "compress zstd br gzip;", got "on"`}},
		{"off with others", site("compress gzip off;"),
			[]string{f + `4:15: compress: "off" must be the only argument`}},
		{"twice", site("compress gzip;\ncompress br;"),
			[]string{f + `5:1: "compress" is already set in this block at /t/main.conf:4:1`}},

		{"level unknown algorithm", site("compress gzip;\ncompress_level lz4 3;"),
			[]string{f + `5:16: compress_level: unknown algorithm "lz4"; expected zstd, br or gzip`}},
		{"gzip level too high", site("compress gzip;\ncompress_level gzip 10;"),
			[]string{f + `5:21: compress_level: expected a gzip level from 1 to 9, got "10"`}},
		{"gzip level 0", site("compress gzip;\ncompress_level gzip 0;"),
			[]string{f + `5:21: compress_level: expected a gzip level from 1 to 9, got "0"`}},
		{"zstd level 0", site("compress zstd;\ncompress_level zstd 0;"),
			[]string{f + `5:21: compress_level: expected a zstd level from 1 to 22, got "0"`}},
		{"zstd level 23", site("compress zstd;\ncompress_level zstd 23;"),
			[]string{f + `5:21: compress_level: expected a zstd level from 1 to 22, got "23"`}},
		{"br level 12", site("compress br;\ncompress_level br 12;"),
			[]string{f + `5:19: compress_level: expected a br level from 0 to 11, got "12"`}},
		{"level not a number", site("compress br;\ncompress_level br high;"),
			[]string{f + `5:19: compress_level: expected a br level from 0 to 11, got "high"`}},
		{"level one arg", site("compress br;\ncompress_level 5;"),
			[]string{f + `5:1: "compress_level" takes 2 arguments, got 1`}},
		{"level twice for one algorithm", site("compress gzip;\ncompress_level gzip 4;\ncompress_level gzip 6;"),
			[]string{f + `6:16: compress_level gzip is already set in this block at /t/main.conf:5:16`}},

		{"min length bad size", site("compress gzip;\ncompress_min_length 1t;"),
			[]string{f + `5:21: compress_min_length: expected a size like 512k or 1m, got "1t"`}},
		{"min length negative", site("compress gzip;\ncompress_min_length -1;"),
			[]string{f + `5:21: compress_min_length: expected a size like 512k or 1m, got "-1"`}},
		{"min length above 1m", site("compress gzip;\ncompress_min_length 2m;"),
			[]string{f + `5:21: compress_min_length: must be at most 1m (bodies of unknown length are held back up to this size), got "2m"`}},
		{"min length 1m is fine", site("compress gzip;\ncompress_min_length 1m;"), nil},

		{"type without slash", site("compress gzip;\ncompress_types text;"),
			[]string{f + `5:16: compress_types: expected a media type like text/html, text/*, application/*+json, */* or default, got "text"`}},
		{"empty type", site("compress gzip;\ncompress_types text/html \"\";"),
			[]string{f + `5:26: compress_types: expected a media type like text/html, text/*, application/*+json, */* or default, got ""`}},
		{"star type with subtype", site("compress gzip;\ncompress_types */json;"),
			[]string{f + `5:16: compress_types: expected a media type like text/html, text/*, application/*+json, */* or default, got "*/json"`}},
		{"star inside a type", site("compress gzip;\ncompress_types te*t/html;"),
			[]string{f + `5:16: compress_types: expected a media type like text/html, text/*, application/*+json, */* or default, got "te*t/html"`}},
		{"suffix without name", site("compress gzip;\ncompress_types application/*+;"),
			[]string{f + `5:16: compress_types: expected a media type like text/html, text/*, application/*+json, */* or default, got "application/*+"`}},
		{"parameters", site("compress gzip;\ncompress_types \"text/html; charset=utf-8\";"),
			[]string{f + `5:16: compress_types: expected a media type like text/html, text/*, application/*+json, */* or default, got "text/html; charset=utf-8"`}},
		{"type twice", site("compress gzip;\ncompress_types text/* TEXT/*;"),
			[]string{f + `5:23: compress_types: type "TEXT/*" is listed twice`}},
		{"every pattern shape", site("compress gzip;\ncompress_types default text/* application/*+json */* application/vnd.ms-fontobject;"), nil},

		// settings where nothing compresses
		{"site settings without compress", site("compress_min_length 0;\ncompress_types text/*;\ncompress_level gzip 4;"),
			[]string{
				f + `4:1: "compress_min_length" has no effect without "compress" in this site or any of its locations`,
				f + `5:1: "compress_types" has no effect without "compress" in this site or any of its locations`,
				f + `6:16: "compress_level" has no effect without "compress" in this site or any of its locations`,
			}},
		{"location settings without compress", site("location /x/ { compress_min_length 0; compress_level br 4; }"),
			[]string{
				f + `4:16: "compress_min_length" has no effect without "compress" in this location or inherited from its site`,
				f + `4:54: "compress_level" has no effect without "compress" in this location or inherited from its site`,
			}},
		{"location compress off", site("compress gzip;\nlocation /x/ { compress off; compress_types text/html; }"),
			[]string{f + `5:30: "compress_types" has no effect without "compress" in this location or inherited from its site`}},
		{"location level for an algorithm it does not offer", site("compress zstd gzip;\nlocation /x/ { compress_level br 4; }"),
			[]string{f + `5:31: compress_level br has no effect: this location offers only zstd gzip (compress at /t/main.conf:4:1)`}},
		{"site level for an algorithm nobody offers", site("compress gzip;\ncompress_level br 4;\nlocation /x/ { compress zstd; }"),
			[]string{f + `5:16: compress_level br has no effect: neither this site nor a location taking it from the site offers br`}},
		{"site level whose only user sets its own", site("compress_level br 4;\ncompress_types text/*;\nlocation /x/ { compress br; compress_level br 6; compress_types text/html; }"),
			[]string{
				f + `4:16: "compress_level" has no effect: every location that compresses sets its own`,
				f + `5:1: "compress_types" has no effect: every location that compresses sets its own`,
			}},
		{"site defaults for a location's compress", site("compress_level br 4;\ncompress_types text/*;\nlocation /x/ { compress br; }"), nil},
		{"site min length used by an inheriting location", site("compress_min_length 0;\nlocation /x/ { compress gzip; }\nlocation /y/ { }"), nil},
		{"a bad compress line is not also a missing one", site("compress gzip xz;\ncompress_level gzip 4;\nlocation /x/ { compress_min_length 0; }"),
			[]string{f + `4:15: compress: unknown algorithm "xz"; expected zstd, br, gzip or off`}},
		{"a bad compress line in a location", site("compress_types text/*;\nlocation /x/ { compress on; compress_level br 4; }"),
			[]string{f + `5:25: compress: expected the codings to offer, as in "compress zstd br gzip;", got "on"`}},
		{"inherited compress is in effect", site("compress gzip;\nlocation @x { compress_min_length 0; compress_level gzip 9; }"), nil},

		// nginx names point at the tandem ones
		{"gzip on", site("gzip on;"), []string{f + `4:1: unknown directive "gzip"; did you mean "compress"?`}},
		{"gzip_types", site("gzip_types text/css;"), []string{f + `4:1: unknown directive "gzip_types"; did you mean "compress_types"?`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErrors(t, c.src, c.want...) })
	}
}
