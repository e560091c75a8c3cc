package cachekey

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse("k:${host}|$http_x_tenant|$cookie_lang$is_args$query_string")
	if err != nil {
		t.Fatal(err)
	}
	want := []Part{{Text: "k:"}, {Kind: Host}, {Text: "|"}, {Kind: Header, Text: "X-Tenant"}, {Text: "|"},
		{Kind: Cookie, Text: "lang"}, {Kind: IsArgs}, {Kind: Args}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %+v\nwant %+v", got, want)
	}
	for tpl, msg := range map[string]string{
		"$nope": "unknown variable $nope", "${host": "unclosed ${", "a$": "'$' without a variable name",
		"$http_": "unknown variable $http_", "": "empty key",
	} {
		if _, err := Parse(tpl); err == nil || err.Error() != msg {
			t.Errorf("Parse(%q) error = %v, want %q", tpl, err, msg)
		}
	}
}
