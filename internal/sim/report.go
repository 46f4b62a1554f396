package sim

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Minimal returns the lines of a failing run's trace that matter: the
// scenario, every step, the lines naming the deliveries and endpoints the
// failure is about, and the last lines before it.
func (r *Result) Minimal() []string {
	if r.Failure == nil {
		return nil
	}
	var pats []*regexp.Regexp
	for _, s := range r.Failure.Subjects {
		pats = append(pats, regexp.MustCompile(`\b`+regexp.QuoteMeta(s)+`\b`))
	}
	const tail = 25
	var out []string
	for i, line := range r.Trace {
		keep := i == 0 || !strings.HasPrefix(line, "  ") || i >= len(r.Trace)-tail ||
			strings.Contains(line, "VIOLATION") || strings.Contains(line, "crashed")
		for _, p := range pats {
			keep = keep || p.MatchString(line)
		}
		if strings.HasPrefix(line, "  = ") && i < len(r.Trace)-tail {
			keep = false // the state after each step: only near the end
		}
		if keep {
			out = append(out, line)
		}
	}
	return out
}

// Shrink looks for a shorter scenario that fails the same rule: it leaves
// out ever smaller runs of steps and keeps each cut after which the run
// still fails so. It runs the scenario at most budget times and returns
// the steps to skip and the failing run they give (r itself when nothing
// could be cut).
func Shrink(t *testing.T, r *Result, o Options, budget int) ([]bool, *Result) {
	sc := r.Scenario
	n := len(sc.Steps)
	skip := make([]bool, n)
	if len(o.Skip) > 0 {
		copy(skip, o.Skip)
	}
	best := r
	if r.Failure == nil || r.Failure.Step < 0 {
		return skip, best
	}
	limit := min(n, r.Failure.Step+1) // steps after the failure play no part
	for i := limit; i < n; i++ {
		skip[i] = true
	}
	for chunk := max(1, limit/2); ; chunk /= 2 {
		for start := 0; start < limit && budget > 0; start += chunk {
			try := append([]bool(nil), skip...)
			changed := false
			for i := start; i < min(start+chunk, limit); i++ {
				changed = changed || !try[i]
				try[i] = true
			}
			if !changed {
				continue
			}
			budget--
			o.Skip = try
			res := Run(t, sc, o)
			if res.Failure != nil && res.Failure.Check == r.Failure.Check {
				skip, best = try, res
			}
		}
		if chunk == 1 || budget <= 0 {
			break
		}
	}
	return skip, best
}

// Kept lists the steps a skip mask keeps, for -keep.
func Kept(skip []bool) string {
	var ks []string
	for i, s := range skip {
		if !s {
			ks = append(ks, fmt.Sprint(i))
		}
	}
	return strings.Join(ks, ",")
}

// durLit writes d as Go source.
func durLit(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Minute == 0:
		return fmt.Sprintf("%d * time.Minute", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%d * time.Second", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%d * time.Millisecond", d/time.Millisecond)
	}
	return fmt.Sprintf("%d", d)
}

// Literal returns sc, less the steps skip leaves out, as Go source: a
// failing scenario to keep in TestRegressions, where it stays the same
// whatever later changes to Generate do to the seeds.
func (sc *Scenario) Literal(skip []bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "&Scenario{\n\tSeed: %d, Backend: %q, Dispatchers: %d, Initial: %d,\n", sc.Seed, sc.Backend, sc.Dispatchers, sc.Initial)
	fmt.Fprintf(&b, "\tWorkers: %d, PerEndpoint: %d, Timeout: %s, Lease: %s, PollInterval: %s,\n", sc.Workers, sc.PerEndpoint, durLit(sc.Timeout), durLit(sc.Lease), durLit(sc.PollInterval))
	fmt.Fprintf(&b, "\tMaxRetryAfter: %s, MaxClaims: %d,\n", durLit(sc.MaxRetryAfter), sc.MaxClaims)
	r := sc.Retry
	var ws []string
	for _, w := range r.Schedule {
		ws = append(ws, durLit(w))
	}
	sched := ""
	if len(ws) > 0 {
		sched = ", Schedule: []time.Duration{" + strings.Join(ws, ", ") + "}"
	}
	fmt.Fprintf(&b, "\tRetry: convoy.RetryPolicy{Kind: %q, Interval: %s, Multiplier: %g, MaxInterval: %s, Limit: %d%s},\n", r.Kind, durLit(r.Interval), r.Multiplier, durLit(r.MaxInterval), r.Limit, sched)
	fmt.Fprintf(&b, "\tDead: DeadRule{Deliveries: %d, Window: %s}, Apps: %d, Receivers: %d,\n", sc.Dead.Deliveries, durLit(sc.Dead.Window), sc.Apps, sc.Receivers)
	b.WriteString("\tEndpoints: []EndpointSpec{")
	for i, e := range sc.Endpoints {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{%d, %d, %d}", e.App, e.Receiver, e.Filter)
	}
	b.WriteString("},\n")
	if len(sc.Flows) > 0 {
		b.WriteString("\tFlows: []FlowSpec{")
		for i, f := range sc.Flows {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{%t, %d}", f.Ordered, f.Rate)
		}
		b.WriteString("},\n")
	}
	fmt.Fprintf(&b, "\tClaimInsert: %t, Adaptive: %t, Breaker: BreakerSpec{MinAttempts: %d, CoolDown: %s},\n", sc.ClaimInsert, sc.Adaptive, sc.Breaker.MinAttempts, durLit(sc.Breaker.CoolDown))
	b.WriteString("\tSteps: []Step{\n")
	for i, s := range sc.Steps {
		if skip != nil && skip[i] {
			continue
		}
		fmt.Fprintf(&b, "\t\t{Op%s, %d, %d, %d, %s},\n", opGo[s.Op], s.A, s.B, s.C, durLit(s.D))
	}
	b.WriteString("\t},\n}")
	return b.String()
}

// opGo names the Op constants in Go source.
var opGo = map[Op]string{OpAdvance: "Advance", OpSend: "Send", OpReceiver: "Receiver", OpFault: "Fault", OpCrash: "Crash", OpStart: "Start", OpStop: "Stop", OpStatus: "Status", OpResend: "Resend", OpResendEndpoint: "ResendEndpoint", OpUpdate: "Update", OpRemove: "Remove", OpAdd: "Add"}
