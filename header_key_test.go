package convoy

import (
	"strings"
	"testing"
)

// FuzzSameHeader checks that the allocation-free comparisons agree with
// headerKey, the form names are compared in, for every name that can be a
// header (ASCII tokens): a mismatch would let an endpoint header through
// as a reserved one.
func FuzzSameHeader(f *testing.F) {
	for _, s := range [][2]string{
		{"X-Convoy-Signature", "x_convoy_signature"}, {"Content-Type", "content-typ"},
		{"Webhook-Id", "WEBHOOK_ID"}, {"Proxy-", "proxy-authorization"}, {"a", "B"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !ascii(a) || !ascii(b) {
			return
		}
		if got, want := sameHeader(a, b), headerKey(a) == headerKey(b); got != want {
			t.Fatalf("sameHeader(%q, %q) = %v, headerKey says %v", a, b, got, want)
		}
		if got, want := hasHeaderPrefix(a, b), strings.HasPrefix(headerKey(a), headerKey(b)); got != want {
			t.Fatalf("hasHeaderPrefix(%q, %q) = %v, headerKey says %v", a, b, got, want)
		}
	})
}

func ascii(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestIsReservedHeaderAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		_ = IsReservedHeader("X-Bench-Run")
		_ = IsReservedHeader("x_convoy_signature")
	}); n != 0 {
		t.Fatalf("IsReservedHeader allocates %v times", n)
	}
}
