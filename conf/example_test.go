package conf_test

import (
	"fmt"

	"github.com/tandem-server/tandem/conf"
)

// Parse (like Load) returns either a complete config, defaults filled in,
// or every error with its position.
func ExampleParse() {
	cfg, err := conf.Parse("testdata/example/tandem.conf", []byte(`
site example.com {
    listen 127.0.0.1:8080;
    root public;                  # relative to the config file's directory
    location /static/ { expires 30d; }
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	s := cfg.Sites[0]
	fmt.Println(s.Names, s.Listen[0].Addr, s.Route.Index, s.Locations[0].Route.Static, *s.Locations[0].Route.Expires)

	_, err = conf.Parse("bad.conf", []byte("site a.com {\n    lisen 80;\n}\n"))
	fmt.Println(err)
	// Output:
	// [example.com] 127.0.0.1:8080 [index.html] true 720h0m0s
	// bad.conf:1:1: site "a.com" has no listen directive; add e.g. "listen 80;"
	// bad.conf:2:5: unknown directive "lisen"; did you mean "listen"?
}
