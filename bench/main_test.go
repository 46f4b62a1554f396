package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the program: the parent
// spawns its children as os.Executable() with childEnv set, which is this
// binary during tests.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuick runs the whole program with tiny settings, scale run included,
// and checks that the table has every row. The PostgreSQL rows need the
// server of -pg (CONVOY_TEST_POSTGRES, or the local one): without it they
// fail, and so does this test.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes and runs River; skipped with -short")
	}
	var out, errs bytes.Buffer
	start := time.Now()
	code := run([]string{"-quick", "-scale", "-dir", t.TempDir()}, &out, &errs)
	t.Logf("took %v\n%s", time.Since(start), out.String())
	if code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", code, errs.String())
	}
	for _, want := range []string{
		"machine:", "command:",
		"deliveries ≥ 0.55× ceiling", "deliveries ≥ 0.30× ceiling", "Send ≥ 12,000/s",
		"sender CPU ≤ 2.1× ceiling's", "sender CPU ≤ 4.0× ceiling's", "≥ 10× River deliveries/s",
		"p99 ≤ 20 ms at half rate", "p99 ≤ 5.00 ms at 500/s", "≥ 3× River + PostgreSQL", "synchronous_commit=on",
		"Scale run:", "time to first Claim", "claim latency, full ÷ empty", "peak RSS of the restarted process",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "not run or failed") {
		t.Errorf("a configuration failed")
	}
	// Every row is there with a deliveries/s figure (its second column).
	for _, name := range []string{
		"ceiling (net/http)", "memory", "memory @ half rate", "bolt", "bolt @ half rate",
		"postgres", "postgres @ half rate", "postgres, 3 processes", "river + sqlite (peer)", "river + postgres (peer)",
	} {
		f := rowFields(out.String(), name)
		if len(f) < 2 {
			t.Errorf("no row %q", name)
			continue
		}
		if v, err := strconv.ParseFloat(strings.ReplaceAll(f[1], ",", ""), 64); err != nil || v <= 0 {
			t.Errorf("row %q: deliveries/s %q", name, f[1])
		}
	}
}

// rowFields returns the columns after the name of the table row called
// name, or nil.
func rowFields(out, name string) []string {
	for _, l := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(l, name)
		if !ok {
			continue
		}
		if strings.HasSuffix(name, "half rate") {
			_, rest, _ = strings.Cut(rest, "/s)")
		}
		f := strings.Fields(rest)
		if len(f) == 0 || f[0] == "@" {
			continue
		}
		return f
	}
	return nil
}

func TestBody(t *testing.T) {
	tmpl, err := bodyTemplate(1024)
	if err != nil {
		t.Fatal(err)
	}
	b := makeBody(tmpl, 123456, 1764331234567890123)
	if len(b) != 1024 {
		t.Fatalf("len %d", len(b))
	}
	seq, sent, ok := parseBody(b)
	if !ok || seq != 123456 || sent != 1764331234567890123 {
		t.Fatalf("parse: %d %d %v in %s", seq, sent, ok, b[:60])
	}
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	if _, err := bodyTemplate(minBody - 1); err == nil {
		t.Fatal("tiny body accepted")
	}
}

func TestHelp(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"-h"}, &out, &errs); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.Contains(errs.String(), "-scale-n") {
		t.Fatalf("usage lacks -scale-n:\n%s", errs.String())
	}
}

// TestFairnessQuick runs the fairness comparison with tiny settings and
// checks that it prints a row per configuration.
func TestFairnessQuick(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"-fairness", "-quick"}, &out, &errs); code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", code, errs.String())
	}
	t.Log(out.String())
	for _, name := range []string{"no flow control", "adaptive concurrency", "circuit breaker", "adaptive + breaker"} {
		if f := rowFields(out.String(), name); len(f) < 2 {
			t.Errorf("no row %q", name)
		}
	}
}
