package conf

// What tandem says about the nginx lines a config moved over from nginx
// still carries: the tandem directive that does the job (and where it
// goes), or why the line can go. Kept apart from the builders so the
// mapping reads as one table.

// nginxNames maps nginx directives to the tandem ones that do their job
// under a name too different for suggest to find, and where the tandem one
// goes when that is not where nginx has it.
var nginxNames = map[string]struct{ name, where string }{
	"proxy_pass":                    {"proxy", ""},
	"uwsgi_pass":                    {"proxy", ""},
	"set_real_ip_from":              {"trusted_proxies", ""},
	"gzip":                          {"compress", ""},
	"brotli":                        {"compress", ""},
	"zstd":                          {"compress", ""},
	"gzip_comp_level":               {"compress_level", ""},
	"gzip_min_length":               {"compress_min_length", ""},
	"gzip_types":                    {"compress_types", ""},
	"proxy_connect_timeout":         {"connect_timeout", "next to proxy or in an upstream block"},
	"proxy_next_upstream":           {"retry_status", "in an upstream block"},
	"proxy_ssl_verify":              {"tls_verify", "in an upstream block"},
	"proxy_ssl_trusted_certificate": {"tls_ca", "in an upstream block"},
	"proxy_cache":                   {"cache", ""},
	"proxy_cache_valid":             {"valid", "in a cache block"},
	"proxy_cache_key":               {"cache_key", ""},
	"keepalive_timeout":             {"idle_timeout", "at top level"},
	"client_header_timeout":         {"header_timeout", "at top level"},
	"client_body_timeout":           {"body_timeout", "at top level"},
	"send_timeout":                  {"write_timeout", "at top level"},
	"large_client_header_buffers":   {"max_header_size", "at top level"},
	"worker_connections":            {"max_connections", "at top level"},
	"ssl_certificate":               {"tls", "as tls CERT KEY; in the site"},
	"ssl_certificate_key":           {"tls", "as tls CERT KEY; in the site"},
}

// nginxNotes answer nginx directives that tandem has no counterpart for,
// so an operator moving a config over learns what to do with each line.
var nginxNotes = map[string]string{
	"sendfile":                  "tandem always sends files with sendfile(2); remove the line",
	"tcp_nopush":                "tandem coalesces a response's packets itself; remove the line",
	"tcp_nodelay":               "always on in tandem; remove the line",
	"server_tokens":             "tandem sends no Server header of its own (an upstream's passes through); remove the line",
	"worker_processes":          "tandem sizes the cores it uses to its load (GOMAXPROCS in the environment fixes it); remove the line",
	"log_not_found":             "tandem does not log missing files to the error log; remove the line",
	"server_name":               "names go on the site line: site example.com www.example.com { ... }",
	"http":                      "tandem has no http block; put its directives at top level",
	"events":                    "tandem has no events block (see max_connections); remove it",
	"rewrite":                   "not supported; for moved pages write location ~ ^/old/(.*)$ { return 301 /new/$1; }",
	"fastcgi_pass":              "FastCGI is not supported; run the app in an app block, or proxy to it over HTTP or uwsgi",
	"ssl_protocols":             "tandem speaks TLS 1.3 and 1.2 with Go's secure defaults; remove the line",
	"ssl_ciphers":               "tandem speaks TLS 1.3 and 1.2 with Go's secure defaults; remove the line",
	"ssl_prefer_server_ciphers": "tandem speaks TLS 1.3 and 1.2 with Go's secure defaults; remove the line",
	"ssl_session_cache":         "TLS session resumption is on by default; remove the line",
	"ssl_session_timeout":       "TLS session resumption is on by default; remove the line",
	"charset":                   "text types are served with charset=utf-8; remove the line",
	"default_type":              "tandem knows content types itself (application/octet-stream otherwise); remove the line",
	"types":                     "tandem knows content types itself; remove the block (and include mime.types)",
	"proxy_http_version":        "tandem speaks HTTP/1.1 with keep-alive to upstreams; remove the line",
	"proxy_redirect":            "tandem never rewrites an upstream's Location (nginx's proxy_redirect off); remove the line",
	"proxy_buffers":             "tandem sizes its buffers itself; remove the line",
	"proxy_buffer_size":         "tandem sizes its buffers itself; remove the line",
	"client_body_buffer_size":   "bodies over 1 MiB spill to a temp file; remove the line",
	"proxy_read_timeout":        "tandem splits it in two: first_byte_timeout (waiting for the response head, where slow views show) and read_timeout (pauses in the body); put them next to proxy URL or in an upstream block",
	"if":                        "not supported; another host name is a site of its own, another path a location",
	"set":                       "variables are not supported; the values tandem can use are $host, $remote_addr, $scheme, $request_uri, $uri and $args",
	"map":                       "not supported; another host name is a site of its own, another path a location",
	"limit_req":                 "rate limiting is not supported yet",
	"limit_req_zone":            "rate limiting is not supported yet",
	"limit_conn":                "per-client connection limits are not supported yet (max_connections caps the total)",
	"limit_conn_zone":           "per-client connection limits are not supported yet (max_connections caps the total)",
	"resolver":                  "tandem uses the system resolver (/etc/resolv.conf) and looks names up again every few seconds; remove the line",
	"proxy_cache_path":          "the cache store is the top-level cache { } block (max_size, disk DIR SIZE)",
	"ssl_stapling":              "tandem staples OCSP responses for automatic (ACME) certificates that name a responder; remove the line",
	"ssl_dhparam":               "tandem uses ECDHE key exchange only; remove the line",
	"real_ip_header":            "trusted_proxies reads X-Forwarded-For; remove the line",
}

func (b *builder) unknown(n *node) {
	if note, ok := nginxNotes[n.Name]; ok {
		b.errs.add(n.Pos, "unknown directive %q (nginx): %s", n.Name, note)
		return
	}
	if t, ok := nginxNames[n.Name]; ok {
		if t.where != "" {
			b.errs.add(n.Pos, "unknown directive %q; tandem's is %q, %s", n.Name, t.name, t.where)
		} else {
			b.errs.add(n.Pos, "unknown directive %q; did you mean %q?", n.Name, t.name)
		}
		return
	}
	if s := suggest(n.Name); s != "" {
		b.errs.add(n.Pos, "unknown directive %q; did you mean %q?", n.Name, s)
		return
	}
	b.errs.add(n.Pos, "unknown directive %q", n.Name)
}

// nginxListenFlags answer the nginx listen flags tandem has no use for.
var nginxListenFlags = map[string]string{
	"ssl":            "drop it; a site with tls serves HTTPS on its listen addresses",
	"http2":          "drop it; HTTP/2 is on wherever TLS is (h2c adds it to plain HTTP)",
	"quic":           "drop it and write http3 on; in the site",
	"reuseport":      "drop it; tandem has one listener per address",
	"proxy_protocol": "the PROXY protocol is not supported; use trusted_proxies with X-Forwarded-For",
}

// nginxVarHints answer nginx variables that proxy_set_header lines copied
// from an nginx config carry, for jobs tandem does by itself.
var nginxVarHints = map[string]string{
	"http_upgrade":              "WebSocket upgrades pass through on their own; remove the Upgrade and Connection lines",
	"connection_upgrade":        "WebSocket upgrades pass through on their own; remove the Upgrade and Connection lines",
	"proxy_add_x_forwarded_for": "tandem sets X-Forwarded-For itself (see trusted_proxies); remove the line",
	"http_host":                 "use $host, or leave Host out: the client's Host is passed on by default",
}
