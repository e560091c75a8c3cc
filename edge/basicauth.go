package edge

import (
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-server/tandem/conf/htpasswd"
)

// userFileRecheck is how often a user file is looked at for changes.
const userFileRecheck = time.Second

// basicAuth is a location's `auth_basic` with its user file.
//
// The file as the config loaded it is used at first; after that it is
// looked at once a second and read again when it changed, so
// `htpasswd users ann` takes effect without a reload, as nginx (which
// reads it per request) behaves. A changed file that cannot be read or
// parsed leaves the previous users in place, and the error log says why.
type basicAuth struct {
	challenge []string // WWW-Authenticate value
	path      string
	log       *zap.Logger

	users atomic.Pointer[htpasswd.File]

	mu      sync.Mutex // guards the fields below, held only by the checker
	checked time.Time
	mod     time.Time
	size    int64
	failed  string // the last error logged, so a lasting one is said once
}

func newBasicAuth(realm *string, path string, users *htpasswd.File, log *zap.Logger) *basicAuth {
	if realm == nil || *realm == "" || users == nil {
		return nil
	}
	a := &basicAuth{
		challenge: []string{`Basic realm="` + *realm + `", charset="UTF-8"`},
		path:      path,
		log:       log,
		checked:   time.Now(),
	}
	a.users.Store(users)
	if fi, err := os.Stat(path); err == nil {
		a.mod, a.size = fi.ModTime(), fi.Size()
	}
	return a
}

// ok reports whether r carries a user and password the file accepts.
// bcrypt makes each check cost milliseconds, as in nginx, by design.
func (a *basicAuth) ok(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	return ok && a.current().Verify(user, pass)
}

// current is the users, re-read when the file changed since the last
// look (at most once per userFileRecheck; one request does the look,
// the others use what is there).
func (a *basicAuth) current() *htpasswd.File {
	if a.mu.TryLock() {
		if now := time.Now(); now.Sub(a.checked) >= userFileRecheck {
			a.checked = now
			a.reload()
		}
		a.mu.Unlock()
	}
	return a.users.Load()
}

func (a *basicAuth) reload() {
	fi, err := os.Stat(a.path)
	if err != nil {
		a.unreadable(err)
		return
	}
	if fi.ModTime().Equal(a.mod) && fi.Size() == a.size {
		return
	}
	f, err := os.Open(a.path)
	if err != nil {
		a.unreadable(err)
		return
	}
	defer f.Close()
	users, errs := htpasswd.Parse(f)
	if len(errs) > 0 {
		a.log.Error("auth_basic_user_file has lines tandem cannot use; keeping the users read before",
			zap.String("file", a.path), zap.Errors("lines", errs))
		a.mod, a.size = fi.ModTime(), fi.Size() // said once per change
		return
	}
	a.mod, a.size, a.failed = fi.ModTime(), fi.Size(), ""
	a.users.Store(users)
	a.log.Info("auth_basic_user_file read again", zap.String("file", a.path), zap.Int("users", users.Len()))
}

// unreadable logs a user file that cannot be read, once until it changes:
// it is looked at every second, and a deleted file must not flood the log.
func (a *basicAuth) unreadable(err error) {
	if msg := err.Error(); msg != a.failed {
		a.failed = msg
		a.log.Error("auth_basic_user_file unreadable; keeping the users read before", zap.String("file", a.path), zap.Error(err))
	}
}
