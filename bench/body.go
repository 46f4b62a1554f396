package main

import (
	"fmt"
	"strings"
)

// The request body is a JSON object of a fixed size whose first two fields
// sit at fixed offsets, so the receiver reads them without a JSON parser:
//
//	{"seq":"0000000042","sent":"1764331234567890123","pad":"xxxx…"}
//
// seq numbers the event within a run (it is how the receiver counts
// arrivals and spots duplicates: the library sends per-endpoint headers
// only, so the per-event data travels in the body), and sent is the wall
// clock in Unix nanoseconds just before Send (or Insert, or the bare POST).
// Both are zero-padded decimal strings (JSON numbers cannot have leading
// zeros).
const (
	seqOff, seqLen   = 8, 10
	sentOff, sentLen = 28, 19
	padOff           = 56
	minBody          = padOff + 2
)

// bodyTemplate returns a valid body of size bytes with zero fields.
func bodyTemplate(size int) ([]byte, error) {
	if size < minBody {
		return nil, fmt.Errorf("body size %d is below the minimum %d", size, minBody)
	}
	s := `{"seq":"` + strings.Repeat("0", seqLen) + `","sent":"` + strings.Repeat("0", sentLen) + `","pad":"` +
		strings.Repeat("x", size-minBody) + `"}`
	return []byte(s), nil
}

// makeBody returns a copy of tmpl with seq and sent filled in.
func makeBody(tmpl []byte, seq int, sent int64) []byte {
	b := make([]byte, len(tmpl))
	copy(b, tmpl)
	putDigits(b[seqOff:seqOff+seqLen], uint64(seq))
	putDigits(b[sentOff:sentOff+sentLen], uint64(max(sent, 0)))
	return b
}

// putDigits writes v in decimal, zero-padded to len(dst).
func putDigits(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// parseBody reads seq and sent back from a body made by makeBody.
func parseBody(b []byte) (seq int, sent int64, ok bool) {
	if len(b) < minBody || b[0] != '{' {
		return 0, 0, false
	}
	s, ok1 := digits(b[seqOff : seqOff+seqLen])
	t, ok2 := digits(b[sentOff : sentOff+sentLen])
	return int(s), int64(t), ok1 && ok2
}

func digits(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
