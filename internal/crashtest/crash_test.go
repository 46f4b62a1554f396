package crashtest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil/tally"
	"github.com/convoykit/convoy/store/bolt"
)

var (
	seed   = flag.Int64("seed", 1, "seed of the kill times and of the receiver's faults")
	cycles = flag.Int("cycles", 24, "how many times the sender is killed")
)

const (
	// workers is the sender's pool size (and per-endpoint cap).
	workers = 8
	// maxLeases bounds the deliveries one process holds leased: the
	// scheduler claims no more than its free workers, and a worker that
	// finished an attempt hands the result to the recorder, which holds at
	// most Workers results waiting to be stored (each keeps its lease until
	// stored). A kill catches at most that many in flight.
	maxLeases = 2 * workers
	// A run lasts between minRun and maxRun before its SIGKILL: short runs
	// die while opening the file or sending the first events, long ones
	// while deliveries, retries and takeovers of the previous run's leases
	// (2 s) are under way.
	minRun = 100 * time.Millisecond
	maxRun = 2 * time.Second
	// drainTimeout bounds the last run, which delivers what is left.
	drainTimeout = 60 * time.Second
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCrashKill9 kills the sender with SIGKILL at random moments, restarts
// it on the same bolt file each time, lets a last run drain, then checks
// that every event Send acknowledged was received, that every delivery
// ended Success, and that duplicates come only from deliveries that were in
// flight at a kill.
func TestCrashKill9(t *testing.T) {
	require.GreaterOrEqual(t, *cycles, 1)
	bin := buildSender(t)
	rng := rand.New(rand.NewPCG(uint64(*seed), 0x6b696c6c))
	rc := tally.NewFlakyReceiver(t, rand.New(rand.NewPCG(uint64(*seed), 0x72656376)))
	db := filepath.Join(t.TempDir(), "convoy.db")

	var acked []string
	// inFlight maps a delivery to the leases it held when a sender was
	// killed; each is one claim that may have reached the receiver without
	// its result being recorded.
	inFlight := make(map[string]map[string]bool)
	var killsSending, killsDelivering, killsRetrying int
	for c := range *cycles {
		run := minRun + time.Duration(rng.Int64N(int64(maxRun-minRun)))
		p := startSender(t, bin, "-db", db, "-url", rc.URL)
		p.killAfter(t, run)
		ids := p.lines()
		acked = append(acked, ids...)

		// What the killed process left: its leases, and retries due.
		f := walk(t, db, convoy.DeliveryProcessing, convoy.DeliveryRetry)
		fresh, owners := 0, map[string]bool{}
		for _, d := range f.With(convoy.DeliveryProcessing) {
			if inFlight[d.ID] == nil {
				inFlight[d.ID] = make(map[string]bool)
			}
			if !inFlight[d.ID][d.LeaseID] {
				inFlight[d.ID][d.LeaseID] = true
				fresh++
				owners[d.LeaseOwner] = true
			}
		}
		require.LessOrEqual(t, fresh, maxLeases, "cycle %d: more leases than one process may hold", c)
		require.LessOrEqual(t, len(owners), 1, "cycle %d: leases of several owners appeared", c)
		if len(ids) > 0 {
			killsSending++
		}
		if fresh > 0 {
			killsDelivering++
		}
		if len(f.With(convoy.DeliveryRetry)) > 0 {
			killsRetrying++
		}
		t.Logf("cycle %d: killed after %v: %d acknowledged, %d leases in flight, %d retries pending",
			c, run.Round(time.Millisecond), len(ids), fresh, len(f.With(convoy.DeliveryRetry)))
	}

	// The receiver is healthy from now on, so every delivery can succeed.
	rc.Healthy.Store(true)
	p := startSender(t, bin, "-db", db, "-url", rc.URL, "-drain")
	require.NoError(t, p.wait(t, drainTimeout), "drain run:\n%s", p.stderrTail())

	f := walk(t, db)
	res := tally.Count(acked, rc.Received, f)
	fmt.Printf("crash: seed=%d cycles=%d %s\n", *seed, *cycles, res)
	t.Logf("kills while sending %d, with deliveries in flight %d, with retries pending %d; %d requests, %d deliveries stored",
		killsSending, killsDelivering, killsRetrying, rc.Requests.Load(), len(f.Deliveries))

	require.Empty(t, res.Lost, "acknowledged events never received")
	require.Empty(t, f.NotFinal(), "deliveries left unfinished")
	require.Empty(t, f.With(convoy.DeliveryFailure), "deliveries ended Failure against a receiver that recovers")
	require.Empty(t, res.Unsettled)
	require.Equal(t, len(f.Deliveries), f.ByStatus[convoy.DeliverySuccess])
	// Every stored event (acknowledged or not) has its one delivery, and
	// every delivery reached the receiver.
	for _, d := range f.Deliveries {
		require.Positive(t, rc.Received.Delivery(d.ID), "delivery %s ended Success but was never received", d.ID)
	}

	// Duplicates. A delivery is received twice only when a claim got a 2xx
	// whose Success was never recorded; the claim then ends by its lease
	// expiring and the delivery is claimed again. In a live process the
	// result is stored right after the answer (the lease, 2 s, outlives the
	// attempt, at most 1 s), so such a claim is one a kill cut off: it was
	// Processing under that lease when the process died, and the walk after
	// that kill saw it. So duplicates are at most the leases seen at the
	// kills, and those are at most maxLeases per kill: the Workers attempts
	// running and the Workers results waiting to be stored.
	leases, unexplained := 0, 0
	for _, ls := range inFlight {
		leases += len(ls)
	}
	for _, d := range f.Deliveries {
		if extra := rc.Received.Delivery(d.ID) - 1; extra > len(inFlight[d.ID]) {
			// Possible without a kill only if a 2xx reached the sender
			// after its 1 s timeout: a stall of the whole machine.
			unexplained += extra - len(inFlight[d.ID])
		}
	}
	t.Logf("%d leases in flight at the kills; %d duplicates of deliveries not in flight at a kill", leases, unexplained)
	require.LessOrEqual(t, res.Duplicates, leases, "more duplicates than deliveries in flight at the kills")
	require.LessOrEqual(t, leases, maxLeases**cycles)

	// The kills hit every phase at least once.
	require.Positive(t, killsSending, "no kill while sending")
	require.Positive(t, killsDelivering, "no kill with deliveries in flight")
	require.Positive(t, killsRetrying, "no kill with retries pending")
}

// buildSender builds cmd/sender into a temporary directory, with -race when
// this test runs under the race detector.
func buildSender(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the crash test builds its sender with the go command")
	bin := filepath.Join(t.TempDir(), "sender")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/sender")
	out, err := exec.Command(goTool, args...).CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	return bin
}

// walk opens the bolt file the sender left and reads its deliveries (of
// the given statuses, or all) through the Store interface.
func walk(t *testing.T, db string, statuses ...convoy.DeliveryStatus) *tally.Final {
	t.Helper()
	st, err := bolt.Open(db, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	f, err := tally.Walk(context.Background(), st, statuses...)
	require.NoError(t, err)
	return f
}

// sender is one run of the program.
type sender struct {
	cmd    *exec.Cmd
	out    *lineWriter
	stderr *bytes.Buffer
	exited chan error
}

func startSender(t *testing.T, bin string, args ...string) *sender {
	t.Helper()
	p := &sender{out: &lineWriter{}, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = &lockedWriter{w: p.stderr}
	require.NoError(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.exited <- nil
	})
	return p
}

// killAfter lets the process run for d, then kills it (SIGKILL on Unix: no
// deferred call, no Close, no flush) and waits for it to be gone. It fails
// if the process ended by itself first, or reported a race or a panic.
func (p *sender) killAfter(t *testing.T, d time.Duration) {
	t.Helper()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("sender exited before it was killed: %v\n%s", err, p.stderrTail())
	case <-tm.C:
	}
	require.NoError(t, p.cmd.Process.Kill())
	err := <-p.exited
	p.exited <- err
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "sender was not killed: %v", err)
	p.checkStderr(t)
}

// wait waits up to d for the process to exit by itself and returns how it
// ended; it kills the process if d passes.
func (p *sender) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	tm := time.NewTimer(d)
	defer tm.Stop()
	var err error
	select {
	case err = <-p.exited:
	case <-tm.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		err = fmt.Errorf("still running after %v", d)
	}
	p.exited <- err
	p.checkStderr(t)
	return err
}

// checkStderr fails the test if the process reported a data race, a panic
// or a fatal runtime error.
func (p *sender) checkStderr(t *testing.T) {
	t.Helper()
	s := p.stderrString()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		require.NotContains(t, s, bad, "sender stderr:\n%s", s)
	}
}

func (p *sender) stderrString() string {
	w := p.cmd.Stderr.(*lockedWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	return p.stderr.String()
}

// stderrTail returns the end of the process's stderr, for failure messages.
func (p *sender) stderrTail() string {
	s := p.stderrString()
	if len(s) > 8<<10 {
		s = "…" + s[len(s)-8<<10:]
	}
	return s
}

// lines returns the complete lines the process wrote to stdout: the IDs of
// the events it acknowledged. A last line without its newline was cut by
// the kill and is not an acknowledgement.
func (p *sender) lines() []string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return append([]string(nil), p.out.lines...)
}

// lineWriter collects the complete lines written to it.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.lines = append(w.lines, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}
