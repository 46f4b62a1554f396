package convoyui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convoykit/convoy"
)

//go:embed templates static
var files embed.FS

// assets maps each file under static/ to its content and a short hash of
// it, which its URL carries so that a browser may cache it for good.
var assets = func() map[string]asset {
	m := map[string]asset{}
	entries, err := fs.ReadDir(files, "static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := files.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		m[e.Name()] = asset{body: b, hash: hex.EncodeToString(sum[:6])}
	}
	return m
}()

type asset struct {
	body []byte
	hash string
}

// assetURL is the relative URL of a static file, with its hash.
func assetURL(name string) string {
	a, ok := assets[name]
	if !ok {
		panic("convoyui: no asset " + name)
	}
	return "static/" + name + "?v=" + a.hash
}

// serveAsset serves a static file; when the URL names its current hash it
// may be cached for a year.
func serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a, ok := assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == a.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	w.Header().Set("ETag", `"`+a.hash+`"`)
	if r.Header.Get("If-None-Match") == `"`+a.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}

// page is what every template gets.
type page struct {
	// Name is the template's name, set by render.
	Name     string
	Title    string
	Brand    string
	Nav      string
	Crumbs   []crumb
	Flash    *flash
	ReadOnly bool
	Data     any
}

// crumb is one step of the breadcrumb trail.
type crumb struct{ Label, Href string }

// attemptView is what the attemptFull template shows: an attempt, and the
// header that carried its signature.
type attemptView struct {
	Attempt   *convoy.Attempt
	SigHeader string
}

// templates holds one parsed template set per page.
type templates map[string]*template.Template

var pageNames = []string{"overview", "apps", "app", "endpoint", "events", "event", "delivery", "attempt", "error"}

// parseTemplates parses each page with the layout and the shared
// partials, with functions bound to h (its clock).
func (h *handler) parseTemplates() templates {
	funcs := template.FuncMap{
		"asset":       assetURL,
		"ts":          formatTime,
		"ago":         func(t time.Time) string { return ago(h.now(), t) },
		"dur":         formatDuration,
		"age":         formatAge,
		"url":         redactURL,
		"short":       shortID,
		"badge":       badgeClass,
		"json":        prettyJSON,
		"body":        bodyText,
		"fp":          fingerprint,
		"reqHeaders":  requestHeaders,
		"respHeaders": responseHeaders,
		"statusText":  http.StatusText,
		"pct":         func(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" },
		"statuses":    func() []convoy.DeliveryStatus { return convoy.DeliveryStatuses },
		"join":        strings.Join,
		"plural":      plural,
		"live":        func(s convoy.Secret) bool { return s.LiveAt(h.now()) },
		"dtlocal":     func(t time.Time) string { return formatInput(t) },
		"view":        func(a *convoy.Attempt, sigHeader string) attemptView { return attemptView{a, sigHeader} },
	}
	ts := templates{}
	for _, name := range pageNames {
		ts[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files,
			"templates/layout.html", "templates/partials.html", "templates/"+name+".html"))
	}
	return ts
}

// render writes a page with status.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Name = name
	p.Brand = h.opts.Title
	p.ReadOnly = h.opts.ReadOnly
	if p.Flash == nil {
		p.Flash = takeFlash(w, r)
	}
	var buf bytes.Buffer
	if err := h.tmpl[name].Execute(&buf, p); err != nil {
		h.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "convoyui: rendering failed",
			slog.String("page", name), slog.String("error", err.Error()))
		http.Error(w, "500 internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage is the data of the error template.
type errorPage struct {
	Status  int
	Message string
}

// fail renders an error page for err: 404 for ErrNotFound, 400 for bad
// input, 500 (logged, not shown) for anything else.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := h.describe(r, err)
	h.render(w, r, status, "error", page{Title: http.StatusText(status), Data: errorPage{status, msg}})
}

// describe turns an error into a status and a message fit for the page.
func (h *handler) describe(r *http.Request, err error) (int, string) {
	switch {
	case errors.Is(err, convoy.ErrNotFound):
		return http.StatusNotFound, "Not found: it does not exist, or was deleted."
	case errors.Is(err, convoy.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, convoy.ErrClosed):
		return http.StatusServiceUnavailable, "The dispatcher or its store is closed."
	}
	h.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "convoyui: store call failed",
		slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	return http.StatusInternalServerError, "The store failed; the server log has the details."
}

// errBadRequest is wrapped by errors in a request's own parameters.
var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusNotFound, "error", page{Title: "Not found",
		Data: errorPage{http.StatusNotFound, "There is no page here."}})
}

// formatTime writes t in UTC, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// formatInput writes t as a datetime-local input value, in UTC.
func formatInput(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}

// ago says how far t is from now, coarsely.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d <= -time.Second:
		return "in " + coarse(-d)
	case d < time.Second:
		return "just now"
	}
	return coarse(d) + " ago"
}

// coarse writes d in its largest unit.
func coarse(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	}
}

// formatAge writes an age such as Stats.OldestDueAge; zero is "—".
func formatAge(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	if d < time.Second {
		return formatDuration(d)
	}
	return coarse(d)
}

// formatDuration writes an attempt's duration to a useful precision.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
	}
}

// shortID is the end of an ID, its random part: UUIDv7s made close together
// share their first characters, which are a timestamp.
func shortID(id string) string {
	if len(id) <= 8 {
		return id
	}
	return "…" + id[len(id)-8:]
}

// badgeClass is the CSS class of a status badge.
func badgeClass(status any) string {
	return "badge badge-" + strings.ToLower(fmt.Sprint(status))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// prettyJSON indents a JSON body; anything else is shown as bodyText.
func prettyJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Valid(b) && json.Indent(&buf, b, "", "  ") == nil {
		return buf.String()
	}
	return bodyText(b)
}

// bodyText shows a body as text when it is UTF-8, and otherwise says how
// long it is with the start of it in base64.
func bodyText(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if json.Valid(b) {
		var buf bytes.Buffer
		if json.Indent(&buf, b, "", "  ") == nil {
			return buf.String()
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	n := min(len(b), 256)
	return fmt.Sprintf("(%d bytes, not UTF-8; the first %d in base64)\n%s", len(b), n, base64.StdEncoding.EncodeToString(b[:n]))
}
