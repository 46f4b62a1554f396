// Command bench measures convoy's delivery throughput and latency against
// the raw net/http ceiling and against River with SQLite, in one run on one
// machine, and prints a table with each figure's ratio to the ceiling and
// the project's targets.
//
//	cd bench && go run .            # the table, in about two minutes
//	go run . -scale                 # plus the 1,000,000-event bolt scale run
//	go run . -quick                 # tiny settings (CI smoke test)
//	go run . -cpuprofile /tmp/prof  # one CPU profile per configuration
//
// The parent process runs the receiver and the report; each configuration
// runs in a child process of the same binary (-mode=NAME), so that its
// peak RSS is its own and its CPU profile shows the sender side only.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// childEnv marks a child process, so a test binary can route it to run.
const childEnv = "CONVOY_BENCH_CHILD"

// options are the command-line flags.
type options struct {
	mode     string
	receiver string
	runID    string

	concurrency  int
	senders      int
	n            int
	riverN       int
	riverBatch   int
	bodySize     int
	ceilingTime  time.Duration
	pacedTime    time.Duration
	drainTimeout time.Duration
	only         string
	dir          string
	cpuprofile   string
	memprofile   string
	quick        bool

	scale        bool
	scaleN       int
	scaleWriters int
	scaleSample  int
	scaleClaims  int
	scaleCold    bool

	pg       string
	pgConns  int
	pgSchema string
	fairness bool
}

// configs are the configurations of the main table, in order.
var configs = []string{"ceiling", "memory", "bolt", modePostgres, modePostgres3, "river", modeRiverPG}

// optionalConfigs run only when -only names them.
var optionalConfigs = []string{modePostgresAsync}

// allConfigs are configs and optionalConfigs, in the order they run.
func allConfigs() []string { return append(slices.Clip(configs), optionalConfigs...) }

func (o *options) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.mode, "mode", "", "internal: run one configuration as a child process ("+strings.Join(allConfigs(), ", ")+", pg-worker, scale-fill, scale-open)")
	fs.StringVar(&o.receiver, "receiver", "", "internal: base URL of the parent's receiver")
	fs.StringVar(&o.runID, "run-id", "", "internal: prefix of the receiver's run names")
	fs.IntVar(&o.concurrency, "concurrency", 64, "requests in flight: the ceiling's client loops, the dispatcher's Workers (and PerEndpoint), River's MaxWorkers")
	fs.IntVar(&o.senders, "senders", 64, "goroutines calling Send (or River's Insert) at once")
	fs.IntVar(&o.n, "n", 50000, "events per saturated run of the memory and bolt stores")
	fs.IntVar(&o.riverN, "river-n", 5000, "jobs in the River run")
	fs.IntVar(&o.riverBatch, "river-batch", 0, "insert River jobs with InsertMany, this many per call (0: one Insert per job, as Send)")
	fs.IntVar(&o.bodySize, "body", 1024, "request body size in bytes (a JSON object)")
	fs.DurationVar(&o.ceilingTime, "ceiling-time", 5*time.Second, "how long the bare net/http loop runs")
	fs.DurationVar(&o.pacedTime, "paced-time", 5*time.Second, "how long the paced run at half the saturated rate sends")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "give up on a run when none of its deliveries has arrived for this long")
	fs.StringVar(&o.only, "only", strings.Join(configs, ","), "comma-separated configurations to run; postgres-async (synchronous_commit=off) runs only when named here (-only= with -scale runs the scale run alone)")
	fs.StringVar(&o.dir, "dir", "", "directory for the bolt and SQLite files (default: a new temporary directory)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile per configuration to PREFIX-NAME.pprof")
	fs.StringVar(&o.memprofile, "memprofile", "", "write a heap profile per configuration to PREFIX-NAME.heap.pprof (after the saturated run)")
	fs.BoolVar(&o.quick, "quick", false, "tiny settings for a smoke test (overrides the sizes and durations)")
	fs.BoolVar(&o.scale, "scale", false, "also run the scale run: -scale-n events scheduled an hour ahead in a bolt store, then a restart")
	fs.IntVar(&o.scaleN, "scale-n", 1_000_000, "events in the scale run")
	fs.IntVar(&o.scaleWriters, "scale-writers", 512, "goroutines inserting in the scale run")
	fs.IntVar(&o.scaleSample, "scale-sample", 10000, "deliveries drained through a dispatcher after the scale run's restart")
	fs.BoolVar(&o.scaleCold, "scale-cold", false, "evict the scale run's file from the page cache before the restart (as after a reboot)")
	fs.IntVar(&o.scaleClaims, "scale-claims", 200, "claims timed for the scale run's claim latency")
	fs.StringVar(&o.pg, "pg", "", "PostgreSQL connection string of the postgres and river-postgres rows (default $CONVOY_TEST_POSTGRES, or "+localPG+")")
	fs.IntVar(&o.pgConns, "pg-conns", 16, "connections in each PostgreSQL pool (convoy's and River's alike)")
	fs.StringVar(&o.pgSchema, "pg-schema", "", "internal: the schema a pg-worker child delivers from")
	fs.BoolVar(&o.fairness, "fairness", false, "run only the fairness comparison of the flow controls (1 endpoint that slows down under load, 49 healthy)")
}

// childArgs are the flags a child gets: every setting, explicitly.
func (o *options) childArgs(mode string) []string {
	return []string{
		"-mode=" + mode, "-receiver=" + o.receiver, "-run-id=" + o.runID,
		"-concurrency=" + strconv.Itoa(o.concurrency), "-senders=" + strconv.Itoa(o.senders),
		"-n=" + strconv.Itoa(o.n), "-river-n=" + strconv.Itoa(o.riverN), "-river-batch=" + strconv.Itoa(o.riverBatch), "-body=" + strconv.Itoa(o.bodySize),
		"-ceiling-time=" + o.ceilingTime.String(), "-paced-time=" + o.pacedTime.String(),
		"-drain-timeout=" + o.drainTimeout.String(), "-dir=" + o.dir, "-cpuprofile=" + o.cpuprofile, "-memprofile=" + o.memprofile,
		"-scale-n=" + strconv.Itoa(o.scaleN), "-scale-writers=" + strconv.Itoa(o.scaleWriters),
		"-scale-sample=" + strconv.Itoa(o.scaleSample), "-scale-claims=" + strconv.Itoa(o.scaleClaims), "-scale-cold=" + strconv.FormatBool(o.scaleCold),
		"-pg=" + o.pg, "-pg-conns=" + strconv.Itoa(o.pgConns),
	}
}

// runs reports whether -only selects configuration c.
func (o *options) runs(c string) bool {
	for _, s := range strings.Split(o.only, ",") {
		if strings.TrimSpace(s) == c {
			return true
		}
	}
	return false
}

func (o *options) applyQuick() {
	o.n, o.riverN = 300, 100
	o.ceilingTime, o.pacedTime = 300*time.Millisecond, 500*time.Millisecond
	o.drainTimeout = 15 * time.Second
	o.scaleN, o.scaleWriters, o.scaleSample, o.scaleClaims = 2000, 64, 200, 20
}

func (o *options) validate() error {
	switch {
	case o.riverBatch < 0:
		return errors.New("-river-batch must not be negative")
	case o.concurrency < 1, o.senders < 1, o.n < 1, o.riverN < 1, o.scaleN < 1, o.pgConns < 1,
		o.scaleWriters < 1, o.scaleSample < 1, o.scaleClaims < 1:
		return errors.New("sizes must be positive")
	case o.ceilingTime <= 0, o.pacedTime <= 0, o.drainTimeout <= 0:
		return errors.New("durations must be positive")
	case o.scaleSample > o.scaleN:
		return errors.New("-scale-sample exceeds -scale-n")
	}
	for _, c := range strings.Split(o.only, ",") {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(configs, c) && !slices.Contains(optionalConfigs, c) {
			return fmt.Errorf("-only: unknown configuration %q (have %s)", c, strings.Join(allConfigs(), ", "))
		}
	}
	_, err := bodyTemplate(o.bodySize)
	return err
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program: it parses args and runs either the parent
// (the report) or one child configuration. It returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run . [flags]\n\n"+
			"Measures convoy (memory and bolt stores) against a bare net/http loop (the ceiling)\n"+
			"and River with SQLite, and prints a table with the targets. See README.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.quick && o.mode == "" {
		o.applyQuick()
	}
	if o.pg == "" {
		o.pg = defaultPG()
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if o.mode != "" {
		return runChild(ctx, &o, stdout, stderr)
	}
	if o.fairness {
		if err := runFairness(ctx, &o, stdout); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		return 0
	}
	return runParent(ctx, &o, args, stdout, stderr)
}

// childResult is what a child prints, as JSON, on its standard output.
type childResult struct {
	Mode    string      `json:"mode"`
	Rows    []rowResult `json:"rows"`
	PeakRSS int64       `json:"peak_rss"`
	// PeakAnon and PeakFile are the highest anonymous (heap, stacks) and
	// file-backed (bbolt's memory map, the binary) RSS sampled.
	PeakAnon int64        `json:"peak_anon"`
	PeakFile int64        `json:"peak_file"`
	Notes    []string     `json:"notes,omitempty"`
	Scale    *scaleResult `json:"scale,omitempty"`
	Err      string       `json:"err,omitempty"`
}

// rowResult is one row of the table.
type rowResult struct {
	Name        string        `json:"name"`
	Events      int64         `json:"events"`
	Delivered   int64         `json:"delivered"`
	SendsPerSec float64       `json:"sends_per_sec"` // 0: not applicable
	DelivPerSec float64       `json:"deliveries_per_sec"`
	P50         time.Duration `json:"p50"`
	P99         time.Duration `json:"p99"`
	Max         time.Duration `json:"max"`
	Rate        float64       `json:"rate,omitempty"` // pacing target, events/s
	Dups        int64         `json:"dups"`
	Stray       int64         `json:"stray"`
	Errors      int64         `json:"errors"`
	// SenderCPU and ReceiverCPU are the CPU µs per delivery of the process
	// that sent (the child) and of the receiver (the parent) over the run.
	SenderCPU   float64 `json:"sender_cpu_us"`
	ReceiverCPU float64 `json:"receiver_cpu_us"`
}

func runChild(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	if o.receiver == "" {
		fmt.Fprintln(stderr, "bench: -mode needs -receiver")
		return 2
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile + "-" + o.mode + ".pprof")
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctl := newControl(o.receiver)
	sampler := sampleRSS(20 * time.Millisecond)
	var res *childResult
	var err error
	switch o.mode {
	case "ceiling":
		res, err = runCeiling(ctx, o, ctl)
	case "memory", "bolt":
		res, err = runConvoy(ctx, o, ctl)
	case "river":
		res, err = runRiver(ctx, o, ctl)
	case modePostgres, modePostgresAsync:
		res, err = runPostgres(ctx, o, ctl)
	case modePostgres3:
		res, err = runPostgres3(ctx, o, ctl)
	case modePGWorker:
		res, err = runPGWorker(ctx, o, stdout)
	case modeRiverPG:
		res, err = runRiverPG(ctx, o, ctl)
	case "scale-fill":
		res, err = runScaleFill(ctx, o, ctl)
	case "scale-open":
		res, err = runScaleOpen(ctx, o, ctl)
	default:
		fmt.Fprintf(stderr, "bench: unknown -mode %q\n", o.mode)
		return 2
	}
	if res == nil {
		res = &childResult{}
	}
	if !slices.Contains([]string{"memory", "bolt", modePostgres, modePostgresAsync}, o.mode) {
		writeHeapProfile(o)
	}
	res.Mode = o.mode
	sampler.stop()
	res.PeakRSS = peakRSS()
	res.PeakAnon, res.PeakFile = sampler.anon.Load(), sampler.file.Load()
	if err != nil {
		res.Err = err.Error()
	}
	if e := json.NewEncoder(stdout).Encode(res); e != nil {
		fmt.Fprintln(stderr, "bench:", e)
		return 1
	}
	if err != nil {
		return 1
	}
	return 0
}

// writeHeapProfile writes the heap profile of -memprofile, if set.
func writeHeapProfile(o *options) {
	if o.memprofile == "" {
		return
	}
	f, err := os.Create(o.memprofile + "-" + o.mode + ".heap.pprof")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}

// spawn runs one child configuration and decodes its result.
func spawn(ctx context.Context, o *options, mode string, stderr io.Writer) (*childResult, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.CommandContext(ctx, exe, o.childArgs(mode)...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = stderr
	runErr := cmd.Run()
	var res childResult
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &res); err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("%s: %w", mode, runErr)
		}
		return nil, fmt.Errorf("%s: bad result %q: %w", mode, out.String(), err)
	}
	if res.Err != "" {
		return &res, fmt.Errorf("%s: %s", mode, res.Err)
	}
	if runErr != nil {
		return &res, fmt.Errorf("%s: %w", mode, runErr)
	}
	return &res, nil
}

func runParent(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) int {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "convoy-bench-")
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	rc := newReceiver()
	base, stop, err := rc.serve(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "bench: receiver:", err)
		return 1
	}
	defer stop()
	o.receiver = base
	o.runID = strconv.FormatInt(time.Now().UnixNano()%1e9, 36)

	began := time.Now()
	results := map[string]*childResult{}
	var failed []string
	for _, c := range allConfigs() {
		if !o.runs(c) {
			continue
		}
		fmt.Fprintf(stderr, "bench: running %s…\n", c)
		res, err := spawn(ctx, o, c, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			failed = append(failed, err.Error())
		}
		if res != nil {
			results[c] = res
		}
	}
	var scale *scaleReport
	if o.scale {
		fmt.Fprintf(stderr, "bench: running the scale run (%d events)…\n", o.scaleN)
		var errs []string
		scale, errs = runScale(ctx, o, stderr)
		failed = append(failed, errs...)
	}

	printReport(stdout, o, args, results, scale, time.Since(began))
	if len(failed) > 0 {
		fmt.Fprintf(stdout, "\nFAILED: %s\n", strings.Join(failed, "; "))
		return 1
	}
	return 0
}
