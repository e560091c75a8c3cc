package edge

import (
	"net/http"

	"github.com/tandem-server/tandem/conf/htpasswd"
)

// basicAuth is a location's `auth_basic` with its user file.
type basicAuth struct {
	challenge []string // WWW-Authenticate value
	users     *htpasswd.File
}

func newBasicAuth(realm *string, users *htpasswd.File) *basicAuth {
	if realm == nil || *realm == "" || users == nil {
		return nil
	}
	return &basicAuth{
		challenge: []string{`Basic realm="` + *realm + `", charset="UTF-8"`},
		users:     users,
	}
}

// ok reports whether r carries a user and password the file accepts.
// bcrypt makes each check cost milliseconds, as in nginx, by design.
func (a *basicAuth) ok(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	return ok && a.users.Verify(user, pass)
}
