package convoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/convoykit/convoy"
)

// An ordered endpoint gets its events one at a time, in the order they
// were sent. Here the second event's first attempt fails: the third waits
// for its retry, though it is due at once.
func ExampleEndpoint_ordered() {
	d := newExampleDispatcher(convoy.Config{Retry: convoy.LinearRetry(10*time.Millisecond, 3)})
	defer d.Close(context.Background())
	ctx := context.Background()

	var (
		mu     sync.Mutex
		seen   []string
		failed bool
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		code := http.StatusOK
		if string(body) == `{"step":2}` && !failed {
			failed = true
			code = http.StatusServiceUnavailable
		}
		seen = append(seen, fmt.Sprintf("%s %d", body, code))
		w.WriteHeader(code)
	}))
	defer receiver.Close()

	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL, Ordered: true})
	var last string
	for step := 1; step <= 3; step++ {
		res, err := d.Send(ctx, app.ID, convoy.Event{Type: "order.step", Data: json.RawMessage(fmt.Sprintf(`{"step":%d}`, step))})
		if err != nil {
			fmt.Println(err)
			return
		}
		last = res.Deliveries[0].ID
	}
	fmt.Println("last:", waitFinal(d, last).Status)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		fmt.Println(s)
	}
	// Output:
	// last: Success
	// {"step":1} 200
	// {"step":2} 503
	// {"step":2} 200
	// {"step":3} 200
}
