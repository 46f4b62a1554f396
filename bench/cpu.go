package main

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perDelivery returns cpu per delivered event, in microseconds.
func perDelivery(cpu time.Duration, delivered int64) float64 {
	if delivered <= 0 || cpu <= 0 {
		return 0
	}
	return float64(cpu) / float64(delivered) / 1e3
}
