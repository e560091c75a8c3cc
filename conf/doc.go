// Package conf owns tandem's configuration language: the lexer and parser
// (with FILE:LINE:COL positions), include expansion, the typed model that
// the rest of tandem reads (Config, Site, Location, Route, Limits, App,
// Upstream, Proxy), the defaults, and validation. It does no I/O beyond
// reading config files and certificate files (tls_ca, tls, tls_client_ca),
// globbing includes and checking that root/alias directories and python
// executables are usable; opening listeners, log files and pid files, and
// the internal CA in tls_storage, are left to cmd/tandem and edge.
//
// # Entry points
//
//	cfg, err := conf.Load("/etc/tandem/tandem.conf") // the config file
//	cfg, err := conf.Parse("inline.conf", src)       // in-memory source
//	cfg, err := conf.QuickStart("./public", ":8080") // tandem run --root
//
// A non-nil error is always an Errors: every problem found, one
// FILE:LINE:COL: message per line, in file order. A returned *Config is
// complete: defaults applied and locations filled from their site.
//
// # Grammar in brief
//
//	file      = { directive } .
//	directive = NAME { ARG } ( ";" | "{" { directive } "}" ) .
//
// Words are separated by whitespace; ";", "{" and "}" end a word. "#"
// starts a comment to the end of the line when it begins a word ("a#b" is
// one word). Words may be quoted with "..." or '...'; inside quotes the
// escapes \" \' \\ \n \t are translated and ";", "{", "}", "#" and spaces
// are literal. Lines and columns are 1-based; columns count bytes (a tab is
// one column, "é" two), like the Go compiler.
//
// Directives live in five contexts: main (top level), site, location, app
// (inside `app NAME { }`) and upstream (inside `upstream NAME { }`). The table in directives.go says where each
// may appear and how many arguments it takes; adding a directive is one
// table entry plus one build function. One name may have a variant per
// context: `app NAME { }` defines an app in main, `app NAME;` uses it in a
// site or location.
//
// # Pipeline
//
// lex → parse (includes spliced in place) → build (table-driven, into the
// model) → validate (cross-directive and file-system checks) → defaults and
// inheritance (defaults.go). Errors are collected at every stage; a lexer
// error abandons the rest of that file only.
//
// # Pitfalls
//
//   - Relative paths in root, alias, pid_file, error_log, access_log, chdir,
//     tls_ca, tls certificate and key files, tls_client_ca, tls_storage
//     and python (when it contains "/") resolve against the directory of
//     the file they are written in, the same rule as include. A snippet
//     included from two places means the same thing in both. An app's
//     chdir defaults to that directory too.
//   - include of a plain name that does not exist is an error; a glob that
//     matches nothing is not (an empty conf.d/ is normal).
//   - Zero is not a valid header_timeout/body_timeout/idle_timeout/
//     shutdown_timeout: in Limits zero means "default", so "0" would
//     silently become 10s or 60s. client_max_body_size 0 does mean
//     unlimited, which is why MaxBodyBytes uses -1 for "unset" while
//     parsing.
//   - Duration units are lower-case only: nginx reads "5M" as months.
//   - A location inherits its site's handler (static, try_files, return,
//     app, proxy, cgi) only when it names no handler and no root/alias of
//     its own; named locations never inherit one, so "try_files $uri @app"
//     cannot loop. proxy_set_header and proxy_buffering (cgi_timeout and
//     cgi_env) are inherited field by field instead, into whichever proxy
//     (cgi) the location has. compress, compress_min_length and
//     compress_types are inherited one by one in every location, named
//     ones included, and compress_level per algorithm.
//   - conf checks compress values itself and does not import
//     edge/compress; edge's TestCompress_ConfMatchesPackage keeps the
//     level ranges, bounds and defaults of the two in step.
//   - One *Upstream is shared by every `proxy NAME;` of that NAME and by
//     locations inheriting a site's proxy; run one backend group per
//     pointer. `proxy NAME;` may come before `upstream NAME { }`.
//   - Proxy URLs take no path: nginx's proxy_pass http://a/x/ rewrites the
//     location prefix, a meaning tandem does not copy, so it is an error
//     rather than silently different.
//   - Load does not check that user/group in an app block can be used
//     (`tandem check` often runs as another user than the server); the
//     server calls Config.CheckPrivileges(os.Geteuid()) before starting
//     workers.
//   - Zero is not a valid workers/min_workers/max_workers/queue or app
//     timeout, for the same reason as the limits above.
package conf
