package otelconvoy

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
)

// Redacted replaces what may be a credential in the url.full of client
// spans, as the semantic conventions suggest for query values.
const Redacted = "REDACTED"

// WrapTransport returns rt instrumented with otelhttp: a client span per
// request, child of the attempt's span, with the attributes of the HTTP
// semantic conventions, and otelhttp's client metrics. Set it as
// convoy.Config.WrapTransport, where rt is the SSRF-guarded transport,
// which stays underneath. What the span records of the URL keeps its
// scheme, host and the shape of its path, with query values and path
// segments that look like tokens replaced by REDACTED: webhook URLs
// often carry their credential there. The traceparent header is sent as
// Options.Propagate says.
func (t *Telemetry) WrapTransport(rt http.RoundTripper) http.RoundTripper {
	var prop propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator()
	if t.opts.Propagate == PropagateAttempt {
		prop = propagation.TraceContext{}
	}
	inner := &restoreURL{base: rt, send: t.opts.Propagate == PropagateSend}
	return &redactURL{
		next: otelhttp.NewTransport(inner,
			otelhttp.WithTracerProvider(t.opts.TracerProvider),
			otelhttp.WithMeterProvider(t.opts.MeterProvider),
			otelhttp.WithPropagators(prop)),
		base: rt,
	}
}

// realURLKey carries a request's URL past otelhttp, which sees a redacted
// copy.
type realURLKey struct{}

// redactURL hands otelhttp the request with its URL redacted, keeping the
// real one in the context for restoreURL.
type redactURL struct {
	next http.RoundTripper
	base http.RoundTripper
}

func (r *redactURL) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.WithContext(context.WithValue(req.Context(), realURLKey{}, req.URL))
	out.URL = redacted(req.URL)
	return r.next.RoundTrip(out)
}

// CloseIdleConnections closes the idle connections of the wrapped
// transport.
func (r *redactURL) CloseIdleConnections() {
	if c, ok := r.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// restoreURL puts the real URL back under otelhttp and, for PropagateSend,
// sets the Send's traceparent.
type restoreURL struct {
	base http.RoundTripper
	send bool
}

func (r *restoreURL) RoundTrip(req *http.Request) (*http.Response, error) {
	u, ok := req.Context().Value(realURLKey{}).(*url.URL)
	tp, _ := req.Context().Value(sendContextKey{}).(string)
	if !ok && (!r.send || tp == "") {
		return r.base.RoundTrip(req)
	}
	out := *req // otelhttp's clone: ours to change, but not its fields' contents
	if ok {
		out.URL = u
	}
	if r.send && tp != "" {
		out.Header = req.Header.Clone()
		out.Header.Set("Traceparent", tp)
	}
	return r.base.RoundTrip(&out)
}

// redacted returns u without what may be a credential: no user info,
// query values and token-like path segments (see tokenLike) replaced by
// Redacted, query keys kept, no fragment.
func redacted(u *url.URL) *url.URL {
	c := &url.URL{Scheme: u.Scheme, Host: u.Host}
	if u.Path != "" || u.RawPath != "" {
		segs := strings.Split(u.EscapedPath(), "/")
		for i, seg := range segs {
			if plain, err := url.PathUnescape(seg); err != nil || tokenLike(plain) {
				segs[i] = Redacted
			}
		}
		c.RawPath = strings.Join(segs, "/")
		c.Path, _ = url.PathUnescape(c.RawPath)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			key, _, hasValue := strings.Cut(part, "=")
			if tokenLike(key) {
				key = Redacted
			}
			if hasValue {
				key += "=" + Redacted
			}
			parts[i] = key
		}
		c.RawQuery = strings.Join(parts, "&")
	}
	return c
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
