package convoyui_test

import (
	"context"
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
// the requests its Authorize accepts.
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

	ui := convoyui.Handler(d, convoyui.Options{
		// Your own check: a session cookie, an admin role, a VPN header...
		Authorize: func(r *http.Request) bool { return r.Header.Get("X-Admin") == "yes" },
	})
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", ui))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, _ := http.Get(srv.URL + "/webhooks/apps")
	resp.Body.Close()
	fmt.Println("anonymous:", resp.Status)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/webhooks/app?id="+app.ID, nil)
	req.Header.Set("X-Admin", "yes")
	resp, _ = http.DefaultClient.Do(req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("admin:", resp.Status)
	fmt.Println(strings.Contains(string(body), "https://acme.example/hooks?token=[REDACTED]"))
	// Output:
	// anonymous: 403 Forbidden
	// admin: 200 OK
	// true
}
