package memory

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSortedSet checks a sortedSet against a sorted slice through random
// inserts and deletes that split and merge its chunks many times.
func TestSortedSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	set := newSortedSet(cmp.Compare[int])
	var ref []int
	check := func() {
		t.Helper()
		require.Equal(t, len(ref), set.len())
		var got []int
		set.ascend(func(k int) bool { got = append(got, k); return true })
		require.Equal(t, ref, nonNil(got))
		for _, c := range set.chunks {
			require.NotEmpty(t, c)
			require.LessOrEqual(t, len(c), maxChunk)
		}
		// Every bound, present or not, gives the keys below it.
		for range 20 {
			below := rng.IntN(4 * maxChunk)
			i, _ := slices.BinarySearch(ref, below)
			want := slices.Clone(ref[:i])
			slices.Reverse(want)
			var desc []int
			set.descend(below, true, func(k int) bool { desc = append(desc, k); return true })
			require.Equal(t, nonNil(want), nonNil(desc), "below %d", below)
		}
		var all []int
		set.descend(0, false, func(k int) bool { all = append(all, k); return true })
		want := slices.Clone(ref)
		slices.Reverse(want)
		require.Equal(t, nonNil(want), nonNil(all))
	}
	for round := range 6 {
		grow := round%2 == 0 // grow, then shrink to a few keys
		for range 3 * maxChunk {
			k := rng.IntN(4 * maxChunk)
			i, found := slices.BinarySearch(ref, k)
			if grow || rng.IntN(4) == 0 {
				set.insert(k)
				if !found {
					ref = slices.Insert(ref, i, k)
				}
			} else {
				set.delete(k)
				if found {
					ref = slices.Delete(ref, i, i+1)
				}
			}
		}
		check()
	}
	for len(ref) > 0 {
		set.delete(ref[0])
		ref = ref[1:]
	}
	check()
	require.Empty(t, set.chunks)
}

// TestSortedSetStops checks that ascend and descend stop when yield
// returns false.
func TestSortedSetStops(t *testing.T) {
	set := newSortedSet(cmp.Compare[int])
	for k := range 3 * maxChunk {
		set.insert(k)
	}
	var got []int
	set.ascend(func(k int) bool { got = append(got, k); return len(got) < 3 })
	require.Equal(t, []int{0, 1, 2}, got)
	got = nil
	set.descend(maxChunk+1, true, func(k int) bool { got = append(got, k); return len(got) < 3 })
	require.Equal(t, []int{maxChunk, maxChunk - 1, maxChunk - 2}, got)
}

func nonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
