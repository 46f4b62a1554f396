package convoyui

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/convoykit/convoy"
)

// redacted stands for a value the dashboard never shows. It is the
// placeholder convoy.SecretValue prints.
var redacted = convoy.SecretValue("").String()

// redactURL returns raw fit for display: the scheme, host and the shape of
// the path, without anything that may be a credential. Webhook URLs often
// carry their token in the query (?token=…) or in a path segment
// (/services/T0/B0/XXXXXXXX), so every query value, any user info and every
// path segment that looks like a token (see tokenLike) is replaced by
// [REDACTED]. Query keys stay, so "?token=[REDACTED]" still says what is
// there. A URL that does not parse is not shown at all.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "(unparsable URL, hidden)"
	}
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if u.User != nil {
		b.WriteString(redacted)
		b.WriteByte('@')
	}
	b.WriteString(u.Host)
	for i, seg := range strings.Split(u.EscapedPath(), "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		if plain, err := url.PathUnescape(seg); err == nil && !tokenLike(plain) {
			b.WriteString(seg)
		} else {
			b.WriteString(redacted)
		}
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		for i, part := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			key, _, hasValue := strings.Cut(part, "=")
			if tokenLike(key) {
				key = redacted
			}
			b.WriteString(key)
			if hasValue {
				b.WriteString("=" + redacted)
			}
		}
	}
	return b.String()
}

// tokenLike reports whether a path segment or query key may be a
// credential: at least 16 characters mixing letters and digits, or upper
// and lower case (random tokens, UUIDs), or at least 32 of anything.
func tokenLike(s string) bool {
	if len(s) >= 32 {
		return true
	}
	if len(s) < 16 {
		return false
	}
	var lower, upper, digit bool
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		}
	}
	return (lower || upper) && digit || lower && upper
}

// fingerprint identifies a secret without showing it: the first 4 bytes
// of its SHA-256, in hex. Enough to tell two secrets apart, or to match one
// against a receiver's configuration (which can compute the same), and too
// short to confirm a guess of a well-chosen secret.
func fingerprint(v convoy.SecretValue) string {
	sum := sha256.Sum256([]byte(string(v)))
	return hex.EncodeToString(sum[:4])
}

// header is one header line as the dashboard shows it.
type header struct {
	Name, Value string
	// Hidden reports that Value is the placeholder.
	Hidden bool
}

// requestHeaders lists the headers of an attempt's request, sorted by
// name. Only the headers convoy itself sets (content type, user agent, its
// IDs, the signature; see convoy.IsReservedHeader) show their value: an
// endpoint's custom headers are where users put the receiver's
// credentials (Authorization: Bearer …), so their values are hidden.
func requestHeaders(h http.Header, signatureHeader string) []header {
	return listHeaders(h, func(name string) bool {
		if strings.EqualFold(name, signatureHeader) {
			return true // an HMAC of the body: no secret
		}
		if strings.HasPrefix(strings.ToLower(name), "proxy-") {
			return false // Proxy-Authorization
		}
		return convoy.IsReservedHeader(name)
	})
}

// responseHeaders lists the headers of a receiver's response, sorted by
// name, with the values of those that may carry credentials (cookies,
// tokens, keys, sessions) hidden.
func responseHeaders(h http.Header) []header {
	return listHeaders(h, func(name string) bool { return !sensitiveName(name) })
}

func listHeaders(h http.Header, show func(name string) bool) []header {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []header
	for _, name := range names {
		for _, v := range h[name] {
			if show(name) {
				out = append(out, header{Name: name, Value: v})
			} else {
				out = append(out, header{Name: name, Value: redacted, Hidden: true})
			}
		}
	}
	return out
}

// sensitiveName reports whether a header name suggests a credential.
func sensitiveName(name string) bool {
	n := strings.ToLower(name)
	if n == "cookie" || n == "set-cookie" {
		return true
	}
	for _, s := range []string{"auth", "token", "secret", "key", "password", "session", "credential", "cookie"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
