package conf

import (
	"errors"
	"testing"
)

// FuzzParse: whatever the input, loading never panics and returns either a
// config or a non-empty Errors whose every entry has a real position.
// Includes resolve in an in-memory file system (one snippet file exists),
// so the fuzzer never reads the real disk.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"site a { listen 80; root /www; location / { try_files $uri @x; } location @x { return 404; } }",
		"include *.conf; include s.conf; header_timeout 1h30m; client_max_body_size 1g;",
		"site a b { listen [::1]:8080 default; error_page 404 500 /e; expires max; } }",
		"x \"unterminated",
		"site { { ; } 'a\\'b' }",
		"app b { wsgi a.b:c(); env K v; max_requests 9 jitter 1; queue 5 timeout 1s; }\nsite a { listen 80; app b; location @x { app c; } }",
		"upstream u { server http://[::1]:1 weight 2 backup; server unix:/s; balance header X; health_uri /h; tls_ca s.conf; }\n" +
			"trusted_proxies private 10.0.0.0/8;\nsite a { listen 80; proxy u; proxy_set_header H $host; location /x { proxy uwsgi://a:1; } location = /s { upstream_status; } }",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		m := memEnv{
			files: map[string]string{"/t/main.conf": src, "/t/s.conf": "static;\nlocation /s/ { }"},
			dirs:  map[string]bool{"/www": true, "/t/www": true},
		}
		cfg, err := load(m.env(), "/t/main.conf", []byte(src))
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %T %v is not a non-empty Errors", err, err)
		}
		if cfg != nil {
			t.Fatal("config returned with errors")
		}
		for _, e := range es {
			if e.Pos.File == "" || e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Fatalf("error without a position: %q", e.Error())
			}
		}
	})
}
