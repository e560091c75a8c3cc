// Package bench holds the benchmark scripts (bash, run by hand) and this
// test, which checks that the scripts refuse bad settings with a clear
// message before they install, build or start anything.
package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestScripts_RejectBadKnobs(t *testing.T) {
	cases := []struct {
		script string
		env    []string
		want   string
	}{
		{"proxy.sh", []string{"CADDY=yes"}, "CADDY must be 0 or 1, got 'yes'"},
		{"ab.sh", []string{"WORKLOAD=bogus"}, "unknown WORKLOAD 'bogus'"},
		{"ab.sh", []string{"A_BIN=/nonexistent/tandem"}, "A_BIN /nonexistent/tandem is not an executable"},
		{"frontfloor.sh", []string{"ROUNDS=abc"}, "ROUNDS must be a positive integer, not 'abc'"},
		{"frontfloor.sh", []string{"CONNS=2", "THREADS=4"}, "THREADS (4) must not exceed CONNS (2)"},
	}
	for _, c := range cases {
		t.Run(c.script+" "+strings.Join(c.env, " "), func(t *testing.T) {
			// The refusal comes before any server starts, so a short
			// deadline catches a script that went on to run.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", c.script)
			cmd.Env = append(os.Environ(), c.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("bash %s with %v: %v, want a non-zero exit\n%s", c.script, c.env, err, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("bash %s with %v printed:\n%s\nwant it to say %q", c.script, c.env, out, c.want)
			}
		})
	}
}
