// Package simpg runs convoy's deterministic simulation (internal/sim) on
// store/postgres: several dispatchers at once on one schema, as replicas
// share a database, with sends, receiver failures, store faults, crashes
// (one dispatcher dropped, the database lives on) and every check of the
// simulation after every step. It is a module of its own, so the root
// module never requires pgx, and has no API.
//
// Each seed works in a schema of its own, dropped at the end. The tests
// need a PostgreSQL server: CONVOY_TEST_POSTGRES (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable); they fail,
// never skip, when it is unreachable. Every store call is a round trip to
// the server, so a seed takes tens of times longer than on the memory
// store, and CI runs fewer:
//
//	cd internal/simpg && go test -count=1 ./...       # 100 seeds (30 with -short or -race)
//	cd internal/simpg && go test -count=1 -run 'TestSimPostgres$' -seed=17 -v   # replay one
//	cd internal/simpg && go test -count=1 -run 'TestSimPostgres$' -seeds=1000 -timeout=0
//
// Times in a run are whole microseconds, PostgreSQL's precision, so the
// store keeps them exactly, and the checks compare them as they do on the
// memory store.
package simpg
