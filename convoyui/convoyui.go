// Package convoyui is a dashboard for a convoy.Dispatcher: an http.Handler
// that shows apps, endpoints, events, deliveries and every attempt, and
// repairs deliveries (re-send one, re-send an endpoint's Discarded or
// Failure deliveries, activate or deactivate an endpoint, send it a test
// event). Mount it on your own mux, under any prefix:
//
//	ui := convoyui.Handler(d, convoyui.Options{
//		Authorize: func(r *http.Request) bool { return isAdmin(r) },
//	})
//	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", ui))
//
// # Security
//
// The dashboard has no users of its own, so Handler makes the caller
// choose: Options.Authorize decides for each request, or Options.Insecure
// serves everyone who reaches a loopback address (for local use). A
// handler built with neither answers every request with 500 and says why.
//
// Every state change is a POST checked by http.CrossOriginProtection, so
// another site cannot make a signed-in browser act. Pages carry a strict
// Content-Security-Policy (scripts and styles from the handler's own
// embedded assets only, no inline code, no framing), X-Frame-Options DENY
// and Cache-Control no-store. Everything stored is escaped by
// html/template. Signing secrets are shown as fingerprints only; the values
// of an endpoint's custom headers (where credentials go), of credential
// headers in responses, and the query values, user info and token-like path
// segments of URLs are shown as [REDACTED].
//
// # What it costs
//
// Each page is one or a few paginated Dispatcher calls (each one indexed
// store query) and never a scan, so pages stay fast on a large store.
// It uses the Dispatcher's public API only, so every store works. Links are
// relative, so the handler works under whatever prefix it is mounted at.
//
// The pages are server-rendered html/template with a small CSS file and a
// little JavaScript (a confirmation before bulk or disabling actions),
// embedded in the binary: it works offline and needs no build step.
package convoyui

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/convoykit/convoy"
)

// Options configures Handler. Authorize or Insecure must be set.
type Options struct {
	// Authorize decides whether a request may use the dashboard; false
	// hands it to Unauthorized. It runs before anything else, for pages,
	// assets and actions alike, and must be safe for concurrent use. Check
	// your own session or an admin role here. Required unless Insecure.
	Authorize func(r *http.Request) bool
	// Unauthorized serves the requests Authorize refuses: redirect to your
	// sign-in page, or ask for HTTP basic auth with a 401. Default a plain
	// 403 Forbidden.
	Unauthorized http.Handler
	// Insecure, without Authorize, serves everyone who reaches the
	// dashboard through a loopback host name or address (localhost,
	// 127.0.0.1, [::1]); any other Host is refused, so a web page cannot
	// reach it through DNS rebinding. Use it on a developer's machine only.
	// Ignored when Authorize is set.
	Insecure bool
	// ReadOnly hides every action and refuses their POSTs with 403.
	ReadOnly bool
	// TrustedOrigins are origins ("https://admin.example") whose cross-origin
	// POSTs are accepted, for a dashboard reached through another origin
	// than its own. Default none. A malformed origin makes every request
	// fail with 500, like a missing Authorize.
	TrustedOrigins []string
	// Title names the dashboard in the header and the page titles. Default
	// "convoy".
	Title string
	// PageSize is how many rows a list shows. Default 50, at most
	// convoy.MaxPageSize.
	PageSize int
	// Logger receives the errors the pages cannot show (a store failing).
	// Default slog.Default().
	Logger *slog.Logger
	// Clock tells the time for "3 min ago". Default the system clock; pass
	// the Dispatcher's when it runs on a fake one.
	Clock convoy.Clock
}

// Handler returns the dashboard of d. It is safe for concurrent use. It
// panics if d is nil. A handler whose Options set neither Authorize nor
// Insecure (or set a malformed TrustedOrigins entry) serves nothing: it
// answers every request with 500 and a message saying what to set.
func Handler(d *convoy.Dispatcher, opts Options) http.Handler {
	if d == nil {
		panic("convoyui: Handler needs a Dispatcher")
	}
	if opts.Title == "" {
		opts.Title = "convoy"
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	opts.PageSize = min(opts.PageSize, convoy.MaxPageSize)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &handler{d: d, opts: opts, cop: http.NewCrossOriginProtection()}
	switch {
	case opts.Authorize == nil && !opts.Insecure:
		h.misconfigured = "convoyui: refusing to serve: set Options.Authorize to decide who may use the dashboard (or Options.Insecure for local use)"
	default:
		for _, o := range opts.TrustedOrigins {
			if err := h.cop.AddTrustedOrigin(o); err != nil {
				h.misconfigured = "convoyui: refusing to serve: Options.TrustedOrigins: " + err.Error()
			}
		}
	}
	if h.misconfigured != "" {
		opts.Logger.Error(h.misconfigured)
	}
	h.tmpl = h.parseTemplates()
	h.routes()
	return h
}

type handler struct {
	d             *convoy.Dispatcher
	opts          Options
	cop           *http.CrossOriginProtection
	mux           *http.ServeMux
	tmpl          templates
	misconfigured string
}

// contentSecurityPolicy allows the handler's own scripts, styles and
// images, posting forms to itself, and nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxFormBytes bounds a POST body: a test event of convoy's default
// payload limit, with room for the form encoding.
const maxFormBytes = 4 << 20

// ServeHTTP checks the request (configuration, authorisation, origin of a
// POST) and then serves it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	switch {
	case h.misconfigured != "":
		http.Error(w, h.misconfigured, http.StatusInternalServerError)
		return
	case h.opts.Authorize != nil:
		if !h.opts.Authorize(r) {
			if h.opts.Unauthorized != nil {
				h.opts.Unauthorized.ServeHTTP(w, r)
				return
			}
			http.Error(w, "403 forbidden: not authorised to use this dashboard", http.StatusForbidden)
			return
		}
	case !loopbackHost(r.Host):
		http.Error(w, "403 forbidden: this dashboard runs with Insecure and answers loopback hosts only", http.StatusForbidden)
		return
	}
	if err := h.cop.Check(r); err != nil {
		http.Error(w, "403 forbidden: cross-origin request refused", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	h.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names this machine's
// loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (h *handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.overview)
	m.HandleFunc("GET /apps", h.apps)
	m.HandleFunc("GET /app", h.app)
	m.HandleFunc("GET /endpoint", h.endpoint)
	m.HandleFunc("GET /events", h.events)
	m.HandleFunc("GET /event", h.event)
	m.HandleFunc("GET /delivery", h.delivery)
	m.HandleFunc("GET /attempt", h.attempt)
	m.HandleFunc("GET /static/{name}", serveAsset)
	for path, fn := range map[string]actionFunc{
		"/resend":          h.resend,
		"/resend-endpoint": h.resendEndpoint,
		"/endpoint-status": h.endpointStatus,
		"/test-event":      h.testEvent,
	} {
		m.HandleFunc("POST "+path, h.action(fn))
		m.HandleFunc(path, postOnly)
	}
	m.HandleFunc("/", h.notFound)
	h.mux = m
}

// postOnly answers a request to an action made with another method.
func postOnly(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	http.Error(w, "405 method not allowed: actions are POST forms", http.StatusMethodNotAllowed)
}

// now is the dashboard's clock.
func (h *handler) now() time.Time {
	if h.opts.Clock != nil {
		return h.opts.Clock.Now()
	}
	return time.Now()
}

// ctx bounds the store calls of one request.
func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
