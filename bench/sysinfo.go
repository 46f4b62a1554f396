package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// peakRSS returns the peak resident set size of this process in bytes:
// VmHWM from /proc/self/status, or getrusage's ru_maxrss where /proc is
// missing.
func peakRSS() int64 {
	if v, ok := procStatus("VmHWM"); ok {
		return v
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		return int64(ru.Maxrss) * 1024 // KiB on Linux
	}
	return 0
}

// currentRSS returns the resident set size of this process now (VmRSS),
// or 0 when unknown.
func currentRSS() int64 {
	v, _ := procStatus("VmRSS")
	return v
}

// rssSplit returns the anonymous (heap, stacks) and file-backed (here:
// bbolt's memory map) parts of the resident set now.
func rssSplit() (anon, file int64) {
	anon, _ = procStatus("RssAnon")
	file, _ = procStatus("RssFile")
	return anon, file
}

// rssSampler records the highest anonymous and file-backed RSS seen,
// sampling every interval until stop is called.
type rssSampler struct {
	anon, file atomic.Int64
	stop       func()
}

func sampleRSS(interval time.Duration) *rssSampler {
	s := &rssSampler{}
	quit, done := make(chan struct{}), make(chan struct{})
	take := func() {
		a, f := rssSplit()
		casMax(&s.anon, a)
		casMax(&s.file, f)
	}
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			take()
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	s.stop = func() { close(quit); <-done; take() }
	return s
}

// procStatus reads one "kB" field of /proc/self/status, in bytes.
func procStatus(field string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return n * 1024, true
	}
	return 0, false
}

// cpuModel returns the CPU model name from /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(rest)
		}
	}
	return runtime.GOARCH
}

// machine describes this machine in one line.
func machine() string {
	return fmt.Sprintf("%s, %d logical CPUs (GOMAXPROCS %d), %s %s/%s",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// mib formats bytes as MiB.
func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
