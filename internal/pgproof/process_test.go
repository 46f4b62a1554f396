package pgproof

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// binDir holds cmd/replica, built once for every test of the binary.
var (
	binDir    string
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// replicaBinary builds cmd/replica (with -race when the tests run under
// the race detector) the first time a test needs it.
func replicaBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the proofs build cmd/replica with the go command: %w", err)
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "pgproof-"); buildErr != nil {
			return
		}
		bin := filepath.Join(binDir, "replica")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/replica")
		if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
			return
		}
		buildBin = bin
	})
	require.NoError(t, buildErr)
	return buildBin
}

// process is one run of cmd/replica.
type process struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *lineWriter
	stderr *lockedBuffer
	exited chan error // holds the Wait result once the process is gone

	// killedAt is set by kill: the time just after the process was gone.
	killedAt time.Time
}

// startProcess starts cmd/replica with args; it is killed when the test
// ends if it is still running.
func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &lineWriter{}, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(replicaBinary(t), append([]string{"-name", name}, args...)...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.stderr
	stdin, err := p.cmd.StdinPipe()
	require.NoError(t, err)
	p.stdin = stdin
	require.NoError(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		err := <-p.exited
		p.exited <- err
	})
	return p
}

// exitErr returns how the process ended, or false while it runs.
func (p *process) exitErr() (error, bool) {
	select {
	case err := <-p.exited:
		p.exited <- err
		return err, true
	default:
		return nil, false
	}
}

// waitLine waits up to d for a complete line on stdout that satisfies
// match, failing the test if the process exits first.
func (p *process) waitLine(t *testing.T, d time.Duration, match func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, l := range p.lines() {
			if match(l) {
				return l
			}
		}
		if err, done := p.exitErr(); done {
			t.Fatalf("%s exited (%v) before the expected line\n%s", p.name, err, p.stderrTail())
		}
		require.False(t, time.Now().After(deadline), "%s: no expected line after %v\n%s", p.name, d, p.stderrTail())
		select {
		case <-p.out.changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL (no deferred call, no Close, no flush), waits for the
// process to be gone and notes the time. It fails if the process had ended
// by itself, or reported a race or a panic.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err, done := p.exitErr(); done {
		t.Fatalf("%s exited before it was killed: %v\n%s", p.name, err, p.stderrTail())
	}
	require.NoError(t, p.cmd.Process.Kill())
	err := <-p.exited
	p.exited <- err
	p.killedAt = time.Now()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s was not killed: %v", p.name, err)
	p.checkStderr(t)
}

// stop closes the process's standard input, which makes cmd/replica close
// its dispatcher and exit, and waits up to d for it; it fails unless the
// process exits with status 0.
func (p *process) stop(t *testing.T, d time.Duration) {
	t.Helper()
	_ = p.stdin.Close()
	require.NoError(t, p.wait(d), "%s:\n%s", p.name, p.stderrTail())
	p.checkStderr(t)
}

// wait waits up to d for the process to exit by itself and returns how it
// ended; it kills the process if d passes.
func (p *process) wait(d time.Duration) error {
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
	return err
}

// checkStderr fails the test if the process reported a data race, a panic
// or a fatal runtime error.
func (p *process) checkStderr(t *testing.T) {
	t.Helper()
	s := p.stderr.String()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		require.NotContains(t, s, bad, "%s stderr:\n%s", p.name, s)
	}
}

// stderrTail returns the end of the process's stderr, for failure messages.
func (p *process) stderrTail() string {
	s := p.stderr.String()
	if len(s) > 8<<10 {
		s = "…" + s[len(s)-8<<10:]
	}
	return s
}

// lines returns the complete lines the process wrote to stdout. A last
// line without its newline was cut by a kill and is not counted.
func (p *process) lines() []string { return p.out.all() }

// lineWriter collects the complete lines written to it.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
	ch    chan struct{} // closed and replaced when a line arrives
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
		if w.ch != nil {
			close(w.ch)
			w.ch = nil
		}
	}
}

func (w *lineWriter) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// changed returns a channel closed when the next line arrives.
func (w *lineWriter) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
