package upstream_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tandem-server/tandem/upstream"
)

// A group of one server, and a proxy location in front of it. The edge
// writes the status Serve returns (or lets error_page answer it), as the
// handler below does.
func ExampleGroup_Handler() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the app, host %s", r.Host)
	}))
	defer app.Close()

	g, err := upstream.NewGroup(upstream.Config{
		Name:    "app",
		Servers: []upstream.Server{{URL: app.URL}},
		Balance: upstream.BalanceRoundRobin,
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	h := g.Handler(upstream.HandlerOptions{Buffering: true})

	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status := h.Serve(w, r); status != 0 {
			http.Error(w, http.StatusText(status), status)
		}
	}))
	defer edge.Close()

	req, _ := http.NewRequest("GET", edge.URL, nil)
	req.Host = "example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello from the app, host example.com
}
