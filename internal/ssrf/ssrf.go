// Package ssrf guards outbound connections against server-side request
// forgery: it refuses to connect to loopback, private, link-local and other
// special-purpose addresses unless they are on an allow-list.
package ssrf

import "errors"

// ErrBlocked reports an address in a range the guard refuses.
var ErrBlocked = errors.New("convoy: blocked address")
