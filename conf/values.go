package conf

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// durationUnits are the suffixes a duration may use. Units are lower-case
// only: "5M" is months in nginx, so accepting it as minutes would silently
// change meaning for people moving configs over.
var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  24 * time.Hour,
	"w":  7 * 24 * time.Hour,
}

// parseDuration reads "500ms", "30s", "5m", "2h", "30d", "1w", combinations
// such as "1h30m", or a plain integer meaning seconds (as nginx does).
func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("expected a duration like 30s or 5m, got %q", s)
	if s == "" {
		return 0, bad
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt64/int64(time.Second) {
			return 0, bad
		}
		return time.Duration(n) * time.Second, nil
	}
	var total time.Duration
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		j := i
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		unit, ok := durationUnits[rest[i:j]]
		if i == 0 || !ok {
			return 0, bad
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > (math.MaxInt64-int64(total))/int64(unit) {
			return 0, bad
		}
		total += time.Duration(n) * unit
		rest = rest[j:]
	}
	return total, nil
}

// parseSize reads "512", "512k", "1m", "1g" (any case; powers of 1024).
func parseSize(s string) (int64, error) {
	bad := fmt.Errorf("expected a size like 512k or 1m, got %q", s)
	num, mult := s, int64(1)
	if s != "" {
		switch strings.ToLower(s[len(s)-1:]) {
		case "k":
			num, mult = s[:len(s)-1], 1<<10
		case "m":
			num, mult = s[:len(s)-1], 1<<20
		case "g":
			num, mult = s[:len(s)-1], 1<<30
		}
	}
	if num == "" || strings.ContainsAny(num, "+-") {
		return 0, bad
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, bad
	}
	return n * mult, nil
}

// parseOnOff reads the nginx-style switch words.
func parseOnOff(s string) (bool, error) {
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("expected on or off, got %q", s)
}

// parseCount reads a non-negative integer.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("expected a whole number like 100, got %q", s)
	}
	return n, nil
}

// parseStatus reads an HTTP status code between lo and hi.
func parseStatus(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi || len(s) != 3 {
		return 0, fmt.Errorf("expected an HTTP status code between %d and %d, got %q", lo, hi, s)
	}
	return n, nil
}

func isRedirectCode(code int) bool {
	switch code {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// errPortMissing explains the most common listen mistake: a host alone.
var errPortMissing = errors.New("missing port")

// normalizeListen checks a listen address and returns it in the form
// net.Listen takes: a bare port "8080" becomes ":8080" and a "*" host
// (nginx's spelling of "all addresses") becomes empty.
func normalizeListen(given string) (string, error) {
	addr := given
	if _, err := strconv.Atoi(addr); err == nil {
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if !strings.Contains(addr, ":") {
			err = errPortMissing
		}
		return "", fmt.Errorf("invalid listen address %q (want HOST:PORT, :PORT or PORT): %w", given, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || len(port) > 5 {
		return "", fmt.Errorf("invalid port %q in listen address %q: want a number from 0 to 65535 (0 picks a free port)", port, given)
	}
	if host == "*" {
		host = ""
	}
	if host != "" && host != "localhost" && !isIP(host) && !isHostname(host) {
		return "", fmt.Errorf("invalid host %q in listen address %q: want an IP address or host name", host, given)
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isHostname checks RFC 1123 host name syntax: dot-separated labels of
// letters, digits and inner hyphens, each 1..63 bytes.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkSiteName accepts exact names, one leading "*." wildcard, and "_".
func checkSiteName(name string) error {
	switch {
	case name == "_":
		return nil
	case strings.Contains(name, ":"):
		return fmt.Errorf("site name %q must not contain a port; put the port in listen", name)
	case strings.HasPrefix(name, "*."):
		if isHostname(name[2:]) {
			return nil
		}
	case isHostname(name) || isIP(name):
		return nil
	}
	return fmt.Errorf("invalid site name %q: want a host name like example.com, a wildcard like *.example.com, or _", name)
}
