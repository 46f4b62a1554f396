package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convoykit/convoy"
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

// post sends body to url with the run header (and extra, when set) and
// drains the response; it fails on any status but 2xx.
func post(ctx context.Context, c *http.Client, url, run string, body []byte, extra http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if extra != nil {
		req.Header = extra.Clone()
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

// libraryHeaders are the headers the library sends with every request
// (besides Content-Type and the endpoint's own run header), with a
// signature computed once: the second ceiling row sends exactly them.
func libraryHeaders(body []byte) http.Header {
	id := convoy.NewID()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte("ceiling-secret-0123456789abcdef"))
	mac.Write([]byte(ts + "," + string(body)))
	h := http.Header{}
	h.Set("User-Agent", convoy.UserAgent)
	h.Set(convoy.HeaderEventID, id)
	h.Set(convoy.HeaderDeliveryID, convoy.NewID())
	h.Set(convoy.HeaderEventType, "bench.event")
	h.Set(convoy.HeaderAttempt, "1")
	h.Set("X-Convoy-Signature", "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// runCeiling runs the bare net/http loop twice: with a plain request, and
// with exactly the library's request (its headers, a precomputed
// signature), each for o.ceilingTime.
func runCeiling(ctx context.Context, o *options, ctl *control) (*childResult, error) {
	res := &childResult{}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	for _, c := range []struct {
		name, run string
		extra     http.Header
	}{
		{"ceiling (net/http)", o.runID + "-ceiling", nil},
		{ceilingLibraryRow, o.runID + "-ceiling-lib", libraryHeaders(tmpl)},
	} {
		row, err := ceilingLoop(ctx, o, ctl, c.name, c.run, tmpl, c.extra)
		res.Rows = append(res.Rows, row)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// ceilingLibraryRow names the second ceiling row.
const ceilingLibraryRow = "ceiling (convoy's request)"

// ceilingLoop is one bare net/http loop: o.concurrency goroutines POST the
// same kind of body to the receiver, back to back, for o.ceilingTime.
func ceilingLoop(ctx context.Context, o *options, ctl *control, name, run string, tmpl []byte, extra http.Header) (rowResult, error) {
	limit := int(min(o.ceilingTime.Seconds()*200_000, 5_000_000)) + 1000
	row := rowResult{Name: name}
	if err := ctl.reset(run, limit); err != nil {
		return row, err
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
	start, cpu0 := time.Now(), processCPU()
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
				if err := post(ctx, client, url, run, makeBody(tmpl, i, time.Now().UnixNano()), extra); err != nil {
					errs.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	row.Errors = errs.Load()
	if firstErr != nil {
		return row, fmt.Errorf("%s: %d requests failed, first: %w", name, row.Errors, firstErr)
	}
	sent := min(next.Load(), int64(limit))
	row.Events = sent
	st, err := ctl.waitFor(run, sent, o.drainTimeout)
	fill(&row, st, start)
	row.SenderCPU = perDelivery(processCPU()-cpu0, row.Delivered)
	return row, err
}
