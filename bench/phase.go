package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// sendFunc hands one event to the system under test; body already carries
// its sequence number and send time.
type sendFunc func(ctx context.Context, body []byte) error

// phase describes one measured run of a queue-backed configuration.
type phase struct {
	name    string
	run     string // receiver run name
	n       int    // events
	senders int
	rate    float64 // events/s; 0 sends as fast as possible
	send    sendFunc
	// batch, when positive, hands events over batch at a time to sendBatch
	// instead of one by one to send (no pacing).
	batch     int
	sendBatch func(ctx context.Context, bodies [][]byte) error
	tmpl      []byte
	drain     time.Duration
}

// measure resets the receiver, sends p.n events from p.senders goroutines
// (paced at p.rate when set), waits for them to arrive and returns the row.
//
// sends/s is events over the time until the last Send returned;
// deliveries/s is distinct arrivals over the time from the first Send to
// the last arrival; latency is from just before Send to the receiver
// reading the request.
func measure(ctx context.Context, ctl *control, p phase) (rowResult, error) {
	row := rowResult{Name: p.name, Events: int64(p.n), Rate: p.rate}
	if err := ctl.reset(p.run, p.n); err != nil {
		return row, err
	}
	var (
		next     atomic.Int64
		errCount atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	var interval time.Duration
	if p.rate > 0 {
		interval = time.Duration(float64(time.Second) / p.rate)
	}
	start, cpu0 := time.Now(), processCPU()
	for range p.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p.batch > 0 {
				i := int(next.Add(int64(p.batch)) - int64(p.batch))
				if i >= p.n || ctx.Err() != nil {
					return
				}
				bodies := make([][]byte, 0, p.batch)
				now := time.Now().UnixNano()
				for j := i; j < min(i+p.batch, p.n); j++ {
					bodies = append(bodies, makeBody(p.tmpl, j, now))
				}
				if err := p.sendBatch(ctx, bodies); err != nil {
					errCount.Add(int64(len(bodies)))
					errOnce.Do(func() { firstErr = err })
				}
			}
			for {
				i := int(next.Add(1) - 1)
				if i >= p.n || ctx.Err() != nil {
					return
				}
				if interval > 0 {
					if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
						time.Sleep(d)
					}
				}
				body := makeBody(p.tmpl, i, time.Now().UnixNano())
				if err := p.send(ctx, body); err != nil {
					errCount.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	sendDur := time.Since(start)
	row.Errors = errCount.Load()
	if firstErr != nil {
		return row, fmt.Errorf("%s: %d sends failed, first: %w", p.name, row.Errors, firstErr)
	}
	row.SendsPerSec = float64(p.n) / sendDur.Seconds()
	st, err := ctl.waitFor(p.run, int64(p.n), p.drain)
	fill(&row, st, start)
	row.SenderCPU = perDelivery(processCPU()-cpu0, row.Delivered)
	return row, err
}

// fill copies the receiver's figures into row; start is when sending began.
func fill(row *rowResult, st recvStats, start time.Time) {
	row.Delivered = st.Count
	row.Dups, row.Stray = st.Dups, st.Stray
	row.P50, row.P99, row.Max = time.Duration(st.P50), time.Duration(st.P99), time.Duration(st.Max)
	if el := time.Duration(st.Last - start.UnixNano()); st.Count > 0 && el > 0 {
		row.DelivPerSec = float64(st.Count) / el.Seconds()
	}
	row.ReceiverCPU = perDelivery(time.Duration(st.CPU), st.Count)
}
