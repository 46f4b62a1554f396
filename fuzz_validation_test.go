package convoy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/convoykit/convoy"
)

// FuzzParseEndpointURL: no input panics, and whatever is accepted is an
// absolute http(s) URL with a host and no credentials, within the length
// limit.
func FuzzParseEndpointURL(f *testing.F) {
	for _, s := range []string{"https://example.com/hooks", "http://user:pw@example.com/", "http://[::1]:80/", "ftp://x", "http://0x7f.1/", "", "http://①②⑦.⓪.⓪.①/", "https://bücher.example/", "http://xn--zz-.example/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := convoy.ParseEndpointURL(raw, false)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		if u.Hostname() == "" || u.User != nil || len(raw) > convoy.MaxURLLen {
			t.Fatalf("accepted %q", raw)
		}
		if strings.ContainsAny(raw, " \r\n\t") {
			t.Fatalf("accepted whitespace in %q", raw)
		}
	})
}

// FuzzEventValidate: no input panics, and an accepted event has valid JSON
// data and a type made of [a-zA-Z0-9_.-].
func FuzzEventValidate(f *testing.F) {
	f.Add("invoice.paid", []byte(`{"a":1}`), "key-1")
	f.Add("a b", []byte(`{`), "")
	f.Add("x", []byte(`"\u0000"`), "k\r\n")
	id := convoy.NewID()
	f.Fuzz(func(t *testing.T, typ string, data []byte, key string) {
		ev := &convoy.Event{ID: id, AppID: id, Type: typ, Data: data, IdempotencyKey: key}
		if err := ev.Validate(1 << 20); err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if typ == "" || strings.Trim(typ, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
			t.Fatalf("accepted type %q", typ)
		}
		if strings.ContainsAny(key, "\r\n") {
			t.Fatalf("accepted key %q", key)
		}
	})
}
