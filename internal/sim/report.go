package sim

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
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
