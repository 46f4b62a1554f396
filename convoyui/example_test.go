package convoyui_test

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoyui"
	"github.com/convoykit/convoy/store/memory"
)

// The dashboard mounted under /webhooks/ of a service's own mux, open to
// the requests its Authorize accepts: here HTTP basic auth, which
// Unauthorized asks the browser for.
func ExampleHandler() {
	store := memory.New()
	defer store.Close()
	d, err := convoy.New(convoy.Config{Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme Corp"})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://acme.example/hooks?token=abc123"})

	// isAdmin is the service's own check: its session, an admin role, or,
	// as here, a password.
	password := []byte("correct horse battery staple")
	isAdmin := func(r *http.Request) bool {
		user, pass, ok := r.BasicAuth()
		return ok && user == "admin" && subtle.ConstantTimeCompare([]byte(pass), password) == 1
	}
	askForPassword := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="webhooks"`)
		http.Error(w, "sign in to see the webhooks", http.StatusUnauthorized)
	})

	mux := http.NewServeMux()
	ui := convoyui.Handler(d, convoyui.Options{Authorize: isAdmin, Unauthorized: askForPassword})
	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", ui))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, _ := http.Get(srv.URL + "/webhooks/apps")
	resp.Body.Close()
	fmt.Println("anonymous:", resp.Status)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/webhooks/app?id="+app.ID, nil)
	req.SetBasicAuth("admin", string(password))
	resp, _ = http.DefaultClient.Do(req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("admin:", resp.Status)
	fmt.Println(strings.Contains(string(body), "https://acme.example/hooks?token=[REDACTED]"))
	// Output:
	// anonymous: 401 Unauthorized
	// admin: 200 OK
	// true
}
