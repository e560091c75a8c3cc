package edge

import (
	"html"
	"net/http"
	"regexp"
	"strconv"

	"github.com/tandem-server/tandem/conf"
)

// returnRule is `return CODE [URL|TEXT];` or `redirect URL [CODE];`.
type returnRule struct {
	code int
	text string
	// re is the regex of the rule's `location ~ RE` when the text uses
	// its captures ($1 … $9), as in nginx's
	// `location ~ ^/old/(.*)$ { return 301 /new/$1; }`; else nil.
	re *regexp.Regexp
}

// withCaptures makes rr substitute re's captures; rr is not changed.
func (rr *returnRule) withCaptures(re *regexp.Regexp) *returnRule {
	if rr == nil || re == nil || !hasCaptureRef(rr.text) {
		return rr
	}
	c := *rr
	c.re = re
	return &c
}

// hasCaptureRef reports whether s has a $0 … $9.
func hasCaptureRef(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '$' && s[i+1] >= '0' && s[i+1] <= '9' {
			return true
		}
	}
	return false
}

func newReturnRule(r *conf.Return) *returnRule {
	if r == nil {
		return nil
	}
	return &returnRule{code: r.Code, text: r.Text}
}

func isRedirect(code int) bool {
	switch code {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// serve writes the rule's response. A bare error code (`return 404;`)
// is handed back so error_page applies, as in nginx.
func (rr *returnRule) serve(w http.ResponseWriter, r *http.Request, path string) int {
	var m []string
	if rr.re != nil {
		if m = rr.re.FindStringSubmatch(path); m == nil {
			m = []string{} // no match: every $N is empty
		}
	}
	text := expandVarsCaptures(rr.text, r, path, m)
	switch {
	case isRedirect(rr.code):
		w.Header().Set("Location", text)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		body := "<html><body><a href=\"" + html.EscapeString(text) + "\">" + strconv.Itoa(rr.code) + " " + http.StatusText(rr.code) + "</a></body></html>\n"
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rr.code)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(body))
		}
		return 0
	case text == "" && rr.code >= 400:
		return rr.code
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(text)))
		w.WriteHeader(rr.code)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(text))
		}
		return 0
	}
}
