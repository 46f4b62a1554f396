package postgres

import (
	"context"

	"github.com/convoykit/convoy"
)

// TestOp is one call for CommitTogether: a Record of T, or a Release of
// T.DeliveryID under T.LeaseID.
type TestOp struct {
	Release bool
	T       convoy.Transition
}

// TestOutcome is what CommitTogether did with one TestOp.
type TestOutcome struct {
	Res      convoy.RecordResult
	Err      error
	Panicked any
}

// CommitTogether runs ops as one group commit, in order, as the
// committer does with calls that arrive together.
func CommitTogether(ctx context.Context, s *Store, ops []TestOp) []TestOutcome {
	batch := make([]*op, len(ops))
	for i, x := range ops {
		o := &op{ctx: ctx, kind: opRecord, t: x.T, done: make(chan struct{})}
		if x.Release {
			o.kind = opRelease
		}
		batch[i] = o
	}
	s.runRecords(batch)
	out := make([]TestOutcome, len(ops))
	for i, o := range batch {
		out[i] = TestOutcome{Res: o.res, Err: o.err, Panicked: o.panicked}
	}
	return out
}

// TestInsert is one InsertEvent call for InsertTogether, or an
// InsertEventClaim call when Claim is set.
type TestInsert struct {
	Ev    *convoy.Event
	Ds    []*convoy.Delivery
	Claim *convoy.ClaimRequest
}

// TestInserted is what InsertTogether did with one TestInsert.
type TestInserted struct {
	Res convoy.InsertResult
	Err error
}

// InsertTogether runs calls as one group commit of InsertEvent (and
// InsertEventClaim), in
// order, as the committer does with calls that arrive together.
func InsertTogether(ctx context.Context, s *Store, calls []TestInsert) []TestInserted {
	batch := make([]*op, len(calls))
	for i, c := range calls {
		batch[i] = &op{ctx: ctx, kind: opInsert, ev: c.Ev, ds: c.Ds, claim: c.Claim, done: make(chan struct{})}
	}
	s.runInserts(batch)
	out := make([]TestInserted, len(calls))
	for i, o := range batch {
		out[i] = TestInserted{Res: o.ins, Err: o.err}
	}
	return out
}

// TestListed is what ListTogether read for one call.
type TestListed struct {
	Eps []*convoy.Endpoint
	Err error
}

// ListTogether runs first-page ListEndpoints calls of the apps given, with
// those page sizes (plus one, as ListEndpoints asks), as one group read.
func ListTogether(ctx context.Context, s *Store, apps []string, limits []int) []TestListed {
	batch := make([]*op, len(apps))
	for i := range apps {
		batch[i] = &op{ctx: ctx, kind: opListEndpoints, appID: apps[i], limit: limits[i], done: make(chan struct{})}
	}
	s.runEndpointReads(batch)
	out := make([]TestListed, len(batch))
	for i, o := range batch {
		out[i] = TestListed{Eps: o.eps, Err: o.err}
	}
	return out
}

// SetVacuumThresholds sets s's vacuumCheck and vacuumMin (see vacuum.go)
// to small numbers, so a test reaches them with a few deliveries.
func SetVacuumThresholds(s *Store, check, min int) {
	s.vacuumCheck, s.vacuumMin = int64(check), int64(min)
}

// VacuumIfDead runs s's vacuum check now, as the maintenance goroutine
// does, and reports whether it vacuumed.
func VacuumIfDead(ctx context.Context, s *Store) (bool, error) {
	return s.vacuumIfDead(ctx)
}

// VacuumWakes is how many times s asked its maintenance goroutine to
// check for a vacuum.
func VacuumWakes(s *Store) int64 {
	return s.vacuumWakes.Load()
}
