package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// newHTTPClient is the plain client of the ceiling and of River's worker:
// keep-alive connections, one idle slot per concurrent request.
func newHTTPClient(concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        2 * concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     90 * time.Second,
		},
		Timeout: 15 * time.Second,
	}
}

// post sends body to url with the run header and drains the response; it
// fails on any status but 2xx.
func post(ctx context.Context, c *http.Client, url, run string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(runHeader, run)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// runCeiling is the bare net/http loop: o.concurrency goroutines POST the
// same kind of body to the receiver, back to back, for o.ceilingTime.
func runCeiling(ctx context.Context, o *options, ctl *control) (*childResult, error) {
	res := &childResult{}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	run := o.runID + "-ceiling"
	limit := int(min(o.ceilingTime.Seconds()*200_000, 5_000_000)) + 1000
	if err := ctl.reset(run, limit); err != nil {
		return res, err
	}
	client := newHTTPClient(o.concurrency)
	defer client.CloseIdleConnections()
	url := o.receiver + "/hook"
	var (
		next, errs atomic.Int64
		firstErr   error
		once       sync.Once
		wg         sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(o.ceilingTime)
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= limit {
					return
				}
				if err := post(ctx, client, url, run, makeBody(tmpl, i, time.Now().UnixNano())); err != nil {
					errs.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	row := rowResult{Name: "ceiling (net/http)", Errors: errs.Load()}
	if firstErr != nil {
		res.Rows = append(res.Rows, row)
		return res, fmt.Errorf("ceiling: %d requests failed, first: %w", row.Errors, firstErr)
	}
	sent := min(next.Load(), int64(limit))
	row.Events = sent
	st, err := ctl.waitFor(run, sent, o.drainTimeout)
	fill(&row, st, start)
	res.Rows = append(res.Rows, row)
	return res, err
}
