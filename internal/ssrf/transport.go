package ssrf

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Defaults of [TransportOptions].
const (
	// DefaultTLSHandshakeTimeout bounds a TLS handshake.
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultMaxResponseHeaderBytes bounds the response header of one
	// response: 64 KiB.
	DefaultMaxResponseHeaderBytes = 64 << 10
	// DefaultMaxIdleConnsPerHost is how many idle connections are kept per
	// host ("scheme://host:port") for reuse by the next deliveries.
	DefaultMaxIdleConnsPerHost = 64
	// DefaultMaxIdleConns bounds the idle connections kept across all hosts.
	DefaultMaxIdleConns = 1024
	// DefaultIdleConnTimeout is how long an idle connection is kept.
	DefaultIdleConnTimeout = 90 * time.Second
)

// TransportOptions configures [NewTransport]. The zero value is usable: each
// zero field means the default its comment gives.
type TransportOptions struct {
	// Guard decides which addresses may be connected to. Nil refuses every
	// special-purpose range.
	Guard *Guard
	// Resolver resolves host names. Nil means net.DefaultResolver.
	Resolver Resolver
	// DialTimeout bounds one TCP connection attempt. Zero means
	// DefaultDialTimeout (5 s).
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Zero means
	// DefaultTLSHandshakeTimeout (5 s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response header after
	// the request has been written. Zero means no bound of its own: the
	// request's context (the delivery timeout) still ends the wait.
	ResponseHeaderTimeout time.Duration
	// MaxResponseHeaderBytes bounds the size of a response header; a
	// larger one fails the request. Zero means DefaultMaxResponseHeaderBytes
	// (64 KiB).
	MaxResponseHeaderBytes int64
	// MaxIdleConnsPerHost is how many idle connections are kept per host.
	// Zero means DefaultMaxIdleConnsPerHost (64); net/http's own default of
	// 2 would close most connections to a busy endpoint after each burst.
	MaxIdleConnsPerHost int
	// MaxIdleConns bounds the idle connections kept across all hosts. Zero
	// means DefaultMaxIdleConns (1024).
	MaxIdleConns int
	// IdleConnTimeout is how long an idle connection is kept for reuse.
	// Zero means DefaultIdleConnTimeout (90 s).
	IdleConnTimeout time.Duration
	// TLSClientConfig configures TLS (root CAs for tests, minimum version).
	// NewTransport uses a clone. Nil means crypto/tls defaults: the system
	// roots, TLS 1.2 or later.
	TLSClientConfig *tls.Config
}

// withDefaults returns o with each zero field replaced by its default.
func (o TransportOptions) withDefaults() TransportOptions {
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.TLSHandshakeTimeout == 0 {
		o.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	if o.MaxResponseHeaderBytes == 0 {
		o.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if o.MaxIdleConnsPerHost == 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	if o.IdleConnTimeout == 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	return o
}

// NewTransport returns an http.Transport whose every connection goes through
// a [Dialer] with o.Guard and o.Resolver, so no request reaches an address
// the guard refuses, whatever the URL, a DNS answer or a redirect says.
//
// Proxy is nil on purpose: with a proxy (http.ProxyFromEnvironment reads
// HTTP_PROXY and HTTPS_PROXY) the transport connects to the proxy, the guard
// checks only the proxy's address, and the proxy then connects wherever the
// URL names, private addresses included.
//
// HTTP/2 is attempted over TLS (ForceAttemptHTTP2, needed because
// DialContext and TLSClientConfig are set), keep-alives are on, and idle
// connections are reused within the limits of o. The transport does not
// follow redirects itself; an http.Client does, and each hop's connection is
// checked, but webhook senders should not follow them (set
// http.Client.CheckRedirect).
//
// Call CloseIdleConnections on the transport when it is no longer used.
func NewTransport(o TransportOptions) *http.Transport {
	o = o.withDefaults()
	d := &Dialer{
		Guard:    o.Guard,
		Resolver: o.Resolver,
		Dialer:   &net.Dialer{Timeout: o.DialTimeout, KeepAlive: defaultKeepAlive},
	}
	var tlsConfig *tls.Config
	if o.TLSClientConfig != nil {
		tlsConfig = o.TLSClientConfig.Clone()
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    o.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  o.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: o.MaxResponseHeaderBytes,
		MaxIdleConns:           o.MaxIdleConns,
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		IdleConnTimeout:        o.IdleConnTimeout,
		ExpectContinueTimeout:  time.Second,
	}
}
