// Package htpasswd reads the user files of `auth_basic_user_file` and
// checks passwords against them. It takes the formats nginx takes, as
// written by Apache's htpasswd and by openssl passwd: bcrypt ($2y$, $2a$,
// $2b$; htpasswd -B), Apache MD5 ($apr1$; htpasswd's default), MD5-crypt
// ($1$; openssl passwd -1), {SHA} (htpasswd -s) and {PLAIN}. The config
// parses a file when it loads, so a bad line is a config error with its
// position, and the edge only verifies.
package htpasswd

import (
	"bufio"
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// File is a parsed user file. It is safe for concurrent use.
type File struct {
	users map[string]string // user → hash as written
}

// LineError is a line of a user file that cannot be used.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Parse reads "user:hash[:comment]" lines; blank lines and lines starting
// with '#' are skipped. It returns every bad line, not just the first.
func Parse(r io.Reader) (*File, []error) {
	f := &File{users: map[string]string{}}
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			errs = append(errs, &LineError{n, "expected user:hash"})
			continue
		}
		hash, _, _ = strings.Cut(hash, ":") // nginx allows a trailing comment field
		if err := checkHash(hash); err != nil {
			errs = append(errs, &LineError{n, fmt.Sprintf("user %q: %v", user, err)})
			continue
		}
		if _, dup := f.users[user]; dup {
			errs = append(errs, &LineError{n, fmt.Sprintf("user %q is listed twice", user)})
			continue
		}
		f.users[user] = hash
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return f, errs
}

// Len is the number of users.
func (f *File) Len() int { return len(f.users) }

// checkHash accepts the formats Verify knows.
func checkHash(h string) error {
	switch {
	case strings.HasPrefix(h, "$2y$"), strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"):
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return fmt.Errorf("malformed bcrypt hash: %v", err)
		}
	case strings.HasPrefix(h, "$apr1$"), strings.HasPrefix(h, "$1$"):
		if strings.Count(h, "$") != 3 {
			return fmt.Errorf("malformed MD5 hash")
		}
	case strings.HasPrefix(h, "{SHA}"):
		if b, err := base64.StdEncoding.DecodeString(h[5:]); err != nil || len(b) != sha1.Size {
			return fmt.Errorf("malformed {SHA} hash")
		}
	case strings.HasPrefix(h, "{PLAIN}"):
	default:
		return fmt.Errorf("unsupported hash (use htpasswd -B for bcrypt, or htpasswd's default MD5)")
	}
	return nil
}

// Verify reports whether password is user's. An unknown user costs the
// same MD5 work as a known one, so timing does not tell users apart.
func (f *File) Verify(user, password string) bool {
	h, ok := f.users[user]
	if !ok {
		md5Crypt([]byte(password), []byte("saltsalt"), apr1Magic)
		return false
	}
	switch {
	case strings.HasPrefix(h, "$2"):
		return bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil
	case strings.HasPrefix(h, apr1Magic):
		return equal(string(md5Crypt([]byte(password), saltOf(h, apr1Magic), apr1Magic)), h)
	case strings.HasPrefix(h, md5Magic):
		return equal(string(md5Crypt([]byte(password), saltOf(h, md5Magic), md5Magic)), h)
	case strings.HasPrefix(h, "{SHA}"):
		sum := sha1.Sum([]byte(password))
		return equal("{SHA}"+base64.StdEncoding.EncodeToString(sum[:]), h)
	case strings.HasPrefix(h, "{PLAIN}"):
		return equal("{PLAIN}"+password, h)
	}
	return false
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

const (
	apr1Magic = "$apr1$"
	md5Magic  = "$1$"
)

// saltOf is the salt of "MAGIC SALT $ HASH".
func saltOf(h, magic string) []byte {
	s, _, _ := strings.Cut(h[len(magic):], "$")
	if len(s) > 8 {
		s = s[:8]
	}
	return []byte(s)
}

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// md5Crypt is Poul-Henning Kamp's MD5-based crypt, which Apache's
// "$apr1$" uses with its own magic string: the whole "MAGIC SALT $ HASH".
func md5Crypt(password, salt []byte, magic string) []byte {
	d := md5.New()
	d.Write(password)
	d.Write([]byte(magic))
	d.Write(salt)
	alt := md5.New()
	alt.Write(password)
	alt.Write(salt)
	alt.Write(password)
	mix := alt.Sum(nil)
	for i := len(password); i > 0; i -= 16 {
		d.Write(mix[:min(i, 16)])
	}
	for i := len(password); i > 0; i >>= 1 {
		if i&1 == 1 {
			d.Write([]byte{0})
		} else {
			d.Write(password[:1])
		}
	}
	final := d.Sum(nil)
	for i := range 1000 {
		r := md5.New()
		if i&1 == 1 {
			r.Write(password)
		} else {
			r.Write(final)
		}
		if i%3 != 0 {
			r.Write(salt)
		}
		if i%7 != 0 {
			r.Write(password)
		}
		if i&1 == 1 {
			r.Write(final)
		} else {
			r.Write(password)
		}
		final = r.Sum(nil)
	}
	out := make([]byte, 0, len(magic)+len(salt)+1+22)
	out = append(out, magic...)
	out = append(out, salt...)
	out = append(out, '$')
	enc := func(v uint32, n int) {
		for ; n > 0; n-- {
			out = append(out, itoa64[v&0x3f])
			v >>= 6
		}
	}
	b := func(i int) uint32 { return uint32(final[i]) }
	enc(b(0)<<16|b(6)<<8|b(12), 4)
	enc(b(1)<<16|b(7)<<8|b(13), 4)
	enc(b(2)<<16|b(8)<<8|b(14), 4)
	enc(b(3)<<16|b(9)<<8|b(15), 4)
	enc(b(4)<<16|b(10)<<8|b(5), 4)
	enc(b(11), 2)
	return out
}
