package compress

import (
	"strings"
	"testing"
)

// TestNegotiate pins RFC 9110 §12.5.3: the client's highest q wins, the
// server's order breaks ties, q=0 excludes, "*" covers unlisted codings,
// identity competes only when mentioned, and bad entries are skipped.
func TestNegotiate(t *testing.T) {
	pref := []string{"zstd", "br", "gzip"}
	tests := []struct {
		name   string
		values []string
		names  []string // default pref
		want   string   // "" = identity
	}{
		{"absent header: identity", nil, nil, ""},
		{"empty value: nothing acceptable", []string{""}, nil, ""},
		{"single coding", []string{"gzip"}, nil, "gzip"},
		{"equal q: server order", []string{"gzip, br, zstd"}, nil, "zstd"},
		{"equal q without zstd", []string{"gzip, br"}, nil, "br"},
		{"client q beats server order", []string{"gzip;q=1, br;q=0.9, zstd;q=0.8"}, nil, "gzip"},
		{"equal explicit q: server order", []string{"gzip;q=0.9, br;q=0.9"}, nil, "br"},
		{"wildcard", []string{"*"}, nil, "zstd"},
		{"wildcard lower than explicit", []string{"*;q=0.5, gzip"}, nil, "gzip"},
		{"explicit q=0 beats wildcard", []string{"*, zstd;q=0"}, nil, "br"},
		{"q=0 excludes", []string{"gzip;q=0"}, nil, ""},
		{"all excluded by wildcard", []string{"*;q=0"}, nil, ""},
		{"identity;q=0 alone", []string{"identity;q=0"}, nil, ""},
		{"identity;q=0 with gzip", []string{"gzip, identity;q=0"}, nil, "gzip"},
		{"identity preferred over low gzip", []string{"gzip;q=0.5, identity"}, nil, ""},
		{"gzip preferred over low identity", []string{"gzip, identity;q=0.5"}, nil, "gzip"},
		{"tie with identity favours the coding", []string{"gzip;q=0.5, identity;q=0.5"}, nil, "gzip"},
		{"unmentioned identity does not compete", []string{"br;q=0.1"}, nil, "br"},
		{"wildcard sets identity's weight", []string{"*;q=0.9, gzip;q=0.5"}, nil, "zstd"},
		{"unknown codings only", []string{"compress, deflate, sdch"}, nil, ""},
		{"unknown codings mixed", []string{"deflate, br;q=0.4"}, nil, "br"},
		{"x-gzip alias", []string{"x-gzip"}, nil, "gzip"},
		{"case-insensitive names", []string{"GZIP, Br;q=0.5"}, nil, "gzip"},
		{"case-insensitive q", []string{"gzip;Q=0.2, br;q=0.3"}, nil, "br"},
		{"whitespace everywhere", []string{"  gzip ;  q=0.8 ,\tbr ; q=0.9  "}, nil, "br"},
		{"space around equals tolerated", []string{"gzip; q = 0.8, br;q=0.7"}, nil, "gzip"},
		{"multiple field lines", []string{"gzip;q=0.1", "br"}, nil, "br"},
		{"empty members", []string{",,, ;;, gzip,"}, nil, "gzip"},
		{"q above 1 ignored", []string{"gzip;q=1.5"}, nil, ""},
		{"q=1.000 valid", []string{"gzip;q=1.000"}, nil, "gzip"},
		{"q=1.001 ignored", []string{"gzip;q=1.001, br;q=0.1"}, nil, "br"},
		{"four decimals ignored", []string{"gzip;q=0.0001"}, nil, ""},
		{"non-numeric q ignored", []string{"gzip;q=abc, br;q=0.1"}, nil, "br"},
		{"negative q ignored", []string{"gzip;q=-1"}, nil, ""},
		{"empty q ignored", []string{"gzip;q="}, nil, ""},
		{"q=0. is zero", []string{"gzip;q=0."}, nil, ""},
		{"smallest weight still acceptable", []string{"zstd;q=0.001"}, nil, "zstd"},
		{"other parameters ignored", []string{"gzip;level=1;q=0.3, br;q=0.2"}, nil, "gzip"},
		{"duplicate entries: highest q counts", []string{"gzip;q=0, gzip"}, nil, "gzip"},
		{"configured subset", []string{"zstd, br"}, []string{"gzip"}, ""},
		{"configured order gzip first", []string{"zstd, gzip"}, []string{"gzip", "zstd"}, "gzip"},
		{"browser default", []string{"gzip, deflate, br, zstd"}, nil, "zstd"},
		{"older browser", []string{"gzip, deflate, br"}, nil, "br"},
		{"curl --compressed", []string{"deflate, gzip"}, nil, "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			names := tc.names
			if names == nil {
				names = pref
			}
			got := ""
			if i := negotiate(tc.values, names); i >= 0 {
				got = names[i]
			}
			if got != tc.want {
				t.Errorf("negotiate(%q, %v) = %q, want %q", tc.values, names, got, tc.want)
			}
		})
	}
}

// TestNegotiate_NoAllocs: negotiation runs on every candidate response.
func TestNegotiate_NoAllocs(t *testing.T) {
	v := []string{"gzip;q=0.8, deflate, br;q=0.9, zstd, *;q=0.1, identity"}
	n := testing.AllocsPerRun(100, func() { negotiate(v, allAlgorithms) })
	if n != 0 {
		t.Errorf("negotiate allocates %v times per call", n)
	}
}

// TestParseQValue pins the qvalue grammar of RFC 9110 §12.4.2.
func TestParseQValue(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"1", 1000, true}, {"0.5", 500, true}, {"0.25", 250, true},
		{"0.125", 125, true}, {"1.0", 1000, true}, {"1.000", 1000, true}, {"0.", 0, true},
		{"1.1", 0, false}, {"2", 0, false}, {"0.1234", 0, false}, {".5", 0, false},
		{"", 0, false}, {"0,5", 0, false}, {"0.5x", 0, false}, {"1e0", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseQValue(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseQValue(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzAcceptEncoding: no header value makes negotiation panic, and the
// result is always an offered coding the header could have meant.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{
		"gzip, deflate, br, zstd", "*;q=0", "identity;q=0", "gzip;q=0.5, identity",
		"br;q=1.000, gzip;q=0.999", ",;=,;q=,", "x-gzip;q=0.1", "zstd;q=0.", "\x00\xff;q=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i := negotiate([]string{s}, allAlgorithms)
		if i < -1 || i >= len(allAlgorithms) {
			t.Fatalf("negotiate(%q) = %d: out of range", s, i)
		}
		if i < 0 {
			return
		}
		name := allAlgorithms[i]
		lower := strings.ToLower(s)
		if !strings.Contains(lower, name) && !strings.Contains(s, "*") {
			t.Fatalf("negotiate(%q) chose %q, which the header never mentions", s, name)
		}
		// Splitting the value into field lines at commas must not change
		// the outcome (RFC 9110 §5.3: a list may span lines).
		if j := negotiate(strings.Split(s, ","), allAlgorithms); j != i {
			t.Fatalf("negotiate(%q) = %d on one line, %d split", s, i, j)
		}
	})
}
