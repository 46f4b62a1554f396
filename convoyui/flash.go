package convoyui

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// flash is the message an action leaves for the page it redirects to
// (post, redirect, get), kept in a short-lived cookie.
type flash struct {
	// Error reports a failed action.
	Error bool
	Text  string
}

const flashCookie = "convoyui_flash"

// setFlash stores f for the next page. The cookie has no Path, so the
// browser scopes it to the directory of the action's URL: the dashboard's
// mount point, whatever it is, since all its routes sit at one level.
func setFlash(w http.ResponseWriter, r *http.Request, f flash) {
	text := f.Text
	if len(text) > 1000 {
		text = text[:1000] + "…"
	}
	kind := "ok"
	if f.Error {
		kind = "error"
	}
	http.SetCookie(w, &http.Cookie{
		Name:     flashCookie,
		Value:    base64.RawURLEncoding.EncodeToString([]byte(kind + "\n" + text)),
		MaxAge:   60,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// takeFlash returns the message left by the previous action, if any, and
// deletes it so that it shows once.
func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	kind, text, ok := strings.Cut(string(b), "\n")
	if !ok || text == "" {
		return nil
	}
	return &flash{Error: kind != "ok", Text: text}
}
