package convoy

import (
	"slices"
	"strconv"
	"strings"
)

// Header names are compared by headerKey: case-insensitively, with - and _
// alike. CGI, WSGI, Rack and PHP receivers see a header Foo-Bar as
// HTTP_FOO_BAR, and so read Foo_Bar as the same header: a custom header
// X_Convoy_Signature would reach them as the signature.

// reservedHeaders are headers the dispatcher sets itself or that HTTP
// owns (framing, hop-by-hop, the ones net/http reads to decide about
// retries). An endpoint's Headers cannot set them.
var reservedHeaders = []string{
	"Content-Type", "Content-Length", "User-Agent", "Host", "Connection",
	"Transfer-Encoding", "Te", "Trailer", "Upgrade", "Keep-Alive",
	"Idempotency-Key", "X-Idempotency-Key",
}

// reservedHeaderPrefixes are header name prefixes the dispatcher owns
// (X-Convoy-, and Webhook- of Standard Webhooks) or that are meant for
// proxies (Proxy-Authorization, Proxy-Connection, ...).
var reservedHeaderPrefixes = []string{"X-Convoy-", "Webhook-", "Proxy-"}

// unsafeSignatureHeaders are headers that, besides the reserved ones,
// cannot carry a signature intact: HTTP gives them a meaning of their own
// (Cookie is parsed, and split by HTTP/2; an unknown Expect is answered
// 417), they describe the body (Content-*), or intermediaries add to them
// or rewrite them (Via, Forwarded, X-Forwarded-*).
var (
	unsafeSignatureHeaders        = []string{"Cookie", "Expect", "Via", "Forwarded", "Max-Forwards"}
	unsafeSignatureHeaderPrefixes = []string{"Content-", "X-Forwarded-"}
)

// headerKey is the form header names are compared in: lower case, with _
// read as -.
func headerKey(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// sameHeader reports whether a and b name the same header for a receiver:
// equal but for case and for - and _. It allocates nothing: requests
// check every endpoint header with it.
func sameHeader(a, b string) bool {
	return len(a) == len(b) && hasHeaderPrefix(a, b)
}

// hasHeaderPrefix reports whether name starts with prefix, compared as
// headerKey compares.
func hasHeaderPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		if headerByte(name[i]) != headerByte(prefix[i]) {
			return false
		}
	}
	return true
}

// headerByte is c as headerKey maps it: ASCII lower case, _ as -. Bytes
// past ASCII are compared as they are (strings.ToLower would also fold
// non-ASCII letters, but header names are ASCII tokens).
func headerByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// listed reports whether name is one of names or starts with one of
// prefixes, compared by headerKey.
func listed(name string, names, prefixes []string) bool {
	if slices.ContainsFunc(names, func(n string) bool { return sameHeader(name, n) }) {
		return true
	}
	return slices.ContainsFunc(prefixes, func(p string) bool { return hasHeaderPrefix(name, p) })
}

// IsReservedHeader reports whether name is a header the dispatcher sets
// itself (Content-Type, User-Agent, X-Convoy-*, Webhook-*, ...) or that
// HTTP owns (Host, Content-Length, Transfer-Encoding, Connection and the
// other hop-by-hop headers, Proxy-*), which an endpoint's Headers may not
// set. Names are compared case-insensitively with - and _ alike, because
// CGI-style receivers read X_Convoy_Signature as X-Convoy-Signature.
// It is safe for concurrent use.
func IsReservedHeader(name string) bool {
	return listed(name, reservedHeaders, reservedHeaderPrefixes)
}

// checkSignatureHeaderName returns why name cannot be the signature header
// of a Convoy scheme, or "" when it can. It must be an RFC 7230 token of
// at most maxHeaderNameLen bytes, without _ (nginx and Apache drop such
// headers by default, so the request would arrive unsigned), neither
// reserved, except for DefaultSignatureHeader itself, nor one that cannot
// carry a signature intact (unsafeSignatureHeaders).
func checkSignatureHeaderName(name string) string {
	switch {
	case name == "" || len(name) > maxHeaderNameLen || !validHeaderName(name):
		return "not a header name"
	case strings.Contains(name, "_"):
		return "contains _, which common servers drop"
	case sameHeader(name, DefaultSignatureHeader):
		return ""
	case IsReservedHeader(name):
		return "set by convoy or HTTP itself"
	case listed(name, unsafeSignatureHeaders, unsafeSignatureHeaderPrefixes):
		return "changed or read by HTTP on the way"
	}
	return ""
}

// validateHeaders checks an endpoint's custom headers: at most maxHeaders,
// token names, printable values within their limits, none reserved.
func validateHeaders(h map[string]string) error {
	if len(h) > maxHeaders {
		return invalid(ErrInvalidHeader, "endpoint.Headers", "too many")
	}
	seen := make(map[string]string, len(h))
	for k, v := range h {
		if other, dup := seen[headerKey(k)]; dup {
			// Which of the two a receiver would read is up to chance.
			return &HeaderError{Field: "endpoint.Headers", Name: k, Reason: "the same header as " + strconv.Quote(other)}
		}
		seen[headerKey(k)] = k
		if k == "" || len(k) > maxHeaderNameLen || !validHeaderName(k) {
			return &HeaderError{Field: "endpoint.Headers", Name: k, Reason: "not a header name"}
		}
		if len(v) > maxHeaderValueLen || !validHeaderValue(v) {
			return &HeaderError{Field: "endpoint.Headers", Name: k, Reason: "bad value"}
		}
		if IsReservedHeader(k) {
			return &HeaderError{Field: "endpoint.Headers", Name: k, Reason: "set by convoy or HTTP itself"}
		}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 7230 token.
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters (CR and LF above all).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
