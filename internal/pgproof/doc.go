// Package pgproof proves convoy's guarantees on store/postgres with real
// processes: several dispatcher processes sharing one schema while one is
// killed with SIGKILL and restarted (no event lost, no delivery attempted
// by two processes while both held a valid lease), convoy.SendTx inside
// the caller's pgx transaction (a rollback or a process killed before its
// commit sends nothing, a commit sends once), and the kill -9 crash test of
// internal/crashtest against PostgreSQL.
//
// It is a module of its own, so the root module never requires pgx, and
// has no API. The tests need a PostgreSQL server: CONVOY_TEST_POSTGRES
// (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable); they
// fail, never skip, when it is unreachable. Each test works in a schema of
// its own, dropped at the end. Run them with
//
//	cd internal/pgproof && go test -race -count=1 -v ./...
//
// cmd/replica is the process they start, kill and restart.
package pgproof
