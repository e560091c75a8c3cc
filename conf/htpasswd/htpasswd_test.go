package htpasswd

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Vectors from `openssl passwd -apr1 -salt abcdefgh secret` and
// `openssl passwd -1 -salt abcdefgh secret`; {SHA} is base64(SHA-1).
const vectors = `# a comment, then a blank line

ann:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/
bob:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1:Bob's comment
cy:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=
dee:{PLAIN}secret
`

func TestVerify_KnownHashes(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f, errs := Parse(strings.NewReader(vectors + "eve:" + string(hash) + "\n"))
	if len(errs) != 0 || f.Len() != 5 {
		t.Fatalf("parse: %v, %d users", errs, f.Len())
	}
	for _, user := range []string{"ann", "bob", "cy", "dee", "eve"} {
		if !f.Verify(user, "secret") {
			t.Errorf("%s: the right password is refused", user)
		}
		if f.Verify(user, "Secret") || f.Verify(user, "") || f.Verify(user, "secret ") {
			t.Errorf("%s: a wrong password is accepted", user)
		}
	}
	if f.Verify("nobody", "secret") {
		t.Error("an unknown user is accepted")
	}
}

func TestParse_ReportsEveryBadLine(t *testing.T) {
	_, errs := Parse(strings.NewReader("ok:{PLAIN}x\nnocolon\n:nohash\nold:abJnggxhB/yWI\nok:{PLAIN}y\nbad:$2y$10$short\n"))
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"line 2: expected user:hash",
		"line 3: expected user:hash",
		`line 4: user "old": unsupported hash (use htpasswd -B for bcrypt, or htpasswd's default MD5)`,
		`line 5: user "ok" is listed twice`,
	}
	if len(got) != 5 || strings.Join(got[:4], "|") != strings.Join(want, "|") || !strings.HasPrefix(got[4], `line 6: user "bad": malformed bcrypt hash`) {
		t.Fatalf("errors:\n%s", strings.Join(got, "\n"))
	}
}

// Against the real tool: random passwords and salts hashed by openssl.
func TestVerify_MatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	for i := range 20 {
		b := make([]byte, 6+i)
		rand.Read(b)
		pw := hex.EncodeToString(b)[:i+1] // lengths 1..20, across MD5's 16-byte blocks
		salt := hex.EncodeToString(b)[:8]
		for _, flag := range []string{"-apr1", "-1"} {
			out, err := exec.Command(openssl, "passwd", flag, "-salt", salt, pw).Output()
			if err != nil {
				t.Fatalf("openssl passwd %s: %v", flag, err)
			}
			f, errs := Parse(strings.NewReader("u:" + strings.TrimSpace(string(out)) + "\n"))
			if len(errs) != 0 || !f.Verify("u", pw) || f.Verify("u", pw+"x") {
				t.Fatalf("openssl passwd %s -salt %s %q = %s: not verified (%v)", flag, salt, pw, out, errs)
			}
		}
	}
}
