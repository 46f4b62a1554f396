package memory_test

import (
	"context"
	"fmt"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/memory"
)

// register stands for any code that is handed a convoy.Store, such as
// convoy.Config.Store.
func register(ctx context.Context, store convoy.Store, app *convoy.App) (*convoy.App, error) {
	if err := store.CreateApp(ctx, app); err != nil {
		return nil, err
	}
	return store.GetApp(ctx, app.ID)
}

func Example() {
	store := memory.New()
	defer store.Close()

	app, err := register(context.Background(), store, &convoy.App{
		ID:   "0191d3c4-7c2e-7cc3-9b6d-8f1c5a2e4b3a",
		Name: "Acme Corp",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(app.Name)
	// Output: Acme Corp
}
