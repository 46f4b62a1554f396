package memory

import (
	"slices"
	"strings"

	"github.com/convoykit/convoy"
)

// idIndex is a set of record IDs kept in ascending order, for the small
// indexes (an app's endpoints, an event's deliveries). IDs are
// time-ordered UUIDs, so inserts are nearly always appends.
type idIndex struct {
	ids []string
}

// insert adds id; it is a no-op when id is present.
func (x *idIndex) insert(id string) {
	i, found := slices.BinarySearch(x.ids, id)
	if !found {
		x.ids = slices.Insert(x.ids, i, id)
	}
}

// remove deletes id if present.
func (x *idIndex) remove(id string) {
	if i, found := slices.BinarySearch(x.ids, id); found {
		x.ids = slices.Delete(x.ids, i, i+1)
	}
}

// removeSet deletes every ID in set in one pass, for bulk removals that
// would cost a shift each when done one at a time.
func (x *idIndex) removeSet(set map[string]struct{}) {
	x.ids = slices.DeleteFunc(x.ids, func(id string) bool {
		_, ok := set[id]
		return ok
	})
}

// page returns up to p.Size() IDs after p.Cursor, in ascending order, and
// the cursor of the next page: the last ID returned when more IDs follow,
// empty otherwise. The cursor is an ID, so a page boundary survives the
// deletion of the record it names.
func (x *idIndex) page(p convoy.Page) (ids []string, next string) {
	start := 0
	if p.Cursor != "" {
		i, found := slices.BinarySearch(x.ids, p.Cursor)
		if found {
			i++
		}
		start = i
	}
	rest := x.ids[start:]
	n := p.Size()
	if len(rest) > n {
		return slices.Clone(rest[:n]), rest[n-1]
	}
	return slices.Clone(rest), ""
}

// descend calls yield with the IDs below the ID `below` (every ID when
// below is empty), newest first, until yield returns false.
func (x *idIndex) descend(below string, yield func(id string) bool) {
	end := len(x.ids)
	if below != "" {
		end, _ = slices.BinarySearch(x.ids, below)
	}
	for i := end - 1; i >= 0; i-- {
		if !yield(x.ids[i]) {
			return
		}
	}
}

// maxChunk bounds the chunks of a sortedSet: an insert or delete moves at
// most this many keys.
const maxChunk = 512

// sortedSet is an ordered set of keys kept in sorted chunks of at most
// maxChunk keys, for the indexes that grow with the backlog and change on
// every delivery transition (deliveries by status, events by time). A seek
// is two binary searches and a change moves at most one chunk's keys, so
// it stays cheap at millions of keys, where a flat sorted slice would move
// half of them each time. The zero value is not usable: set cmp.
type sortedSet[K any] struct {
	cmp    func(a, b K) int
	chunks [][]K
	n      int
}

func newSortedSet[K any](cmp func(a, b K) int) *sortedSet[K] {
	return &sortedSet[K]{cmp: cmp}
}

// newIDSet returns a sortedSet of record IDs.
func newIDSet() *sortedSet[string] { return newSortedSet(strings.Compare) }

func (s *sortedSet[K]) len() int { return s.n }

// chunkFor returns the index of the chunk that holds k or would: the first
// whose last key is ≥ k, or the last chunk. s must not be empty.
func (s *sortedSet[K]) chunkFor(k K) int {
	i, _ := slices.BinarySearchFunc(s.chunks, k, func(c []K, k K) int { return s.cmp(c[len(c)-1], k) })
	return min(i, len(s.chunks)-1)
}

// insert adds k; it is a no-op when k is present.
func (s *sortedSet[K]) insert(k K) {
	if len(s.chunks) == 0 {
		s.chunks = [][]K{{k}}
		s.n = 1
		return
	}
	ci := s.chunkFor(k)
	c := s.chunks[ci]
	i, found := slices.BinarySearchFunc(c, k, s.cmp)
	if found {
		return
	}
	c = slices.Insert(c, i, k)
	s.n++
	if len(c) <= maxChunk {
		s.chunks[ci] = c
		return
	}
	half := len(c) / 2
	right := make([]K, len(c)-half, maxChunk)
	copy(right, c[half:])
	clear(c[half:])
	s.chunks[ci] = c[:half]
	s.chunks = slices.Insert(s.chunks, ci+1, right)
}

// delete removes k if present.
func (s *sortedSet[K]) delete(k K) {
	if len(s.chunks) == 0 {
		return
	}
	ci := s.chunkFor(k)
	c := s.chunks[ci]
	i, found := slices.BinarySearchFunc(c, k, s.cmp)
	if !found {
		return
	}
	c = slices.Delete(c, i, i+1)
	s.n--
	switch {
	case len(c) == 0:
		s.chunks = slices.Delete(s.chunks, ci, ci+1)
	case len(c) < maxChunk/4 && ci+1 < len(s.chunks) && len(c)+len(s.chunks[ci+1]) <= maxChunk:
		// Merge a small chunk with the next, so that deletions do not
		// leave the set in many tiny chunks.
		s.chunks[ci] = append(c, s.chunks[ci+1]...)
		s.chunks = slices.Delete(s.chunks, ci+1, ci+2)
	default:
		s.chunks[ci] = c
	}
}

// min returns the smallest key, if any.
func (s *sortedSet[K]) min() (k K, ok bool) {
	if len(s.chunks) == 0 {
		return k, false
	}
	return s.chunks[0][0], true
}

// ascend calls yield with every key in ascending order until yield returns
// false. yield must not change s.
func (s *sortedSet[K]) ascend(yield func(K) bool) {
	for _, c := range s.chunks {
		for _, k := range c {
			if !yield(k) {
				return
			}
		}
	}
}

// descend calls yield with the keys below `below` (every key when bounded
// is false) in descending order until yield returns false. yield must not
// change s.
func (s *sortedSet[K]) descend(below K, bounded bool, yield func(K) bool) {
	ci := len(s.chunks) - 1
	if ci < 0 {
		return
	}
	i := len(s.chunks[ci]) - 1
	if bounded {
		ci = s.chunkFor(below)
		j, _ := slices.BinarySearchFunc(s.chunks[ci], below, s.cmp)
		i = j - 1
	}
	for ci >= 0 {
		c := s.chunks[ci]
		for ; i >= 0; i-- {
			if !yield(c[i]) {
				return
			}
		}
		if ci--; ci >= 0 {
			i = len(s.chunks[ci]) - 1
		}
	}
}

// statusSets holds delivery IDs by status, one sortedSet per status,
// created when first used.
type statusSets [6]*sortedSet[string]

// statusSlot returns st's position in a statusSets.
func statusSlot(st convoy.DeliveryStatus) int {
	switch st {
	case convoy.DeliveryScheduled:
		return 0
	case convoy.DeliveryProcessing:
		return 1
	case convoy.DeliverySuccess:
		return 2
	case convoy.DeliveryRetry:
		return 3
	case convoy.DeliveryFailure:
		return 4
	}
	return 5 // Discarded: the stores only keep valid statuses
}

// add files id under st.
func (x *statusSets) add(st convoy.DeliveryStatus, id string) {
	i := statusSlot(st)
	if x[i] == nil {
		x[i] = newIDSet()
	}
	x[i].insert(id)
}

// remove takes id out of st's set.
func (x *statusSets) remove(st convoy.DeliveryStatus, id string) {
	if set := x[statusSlot(st)]; set != nil {
		set.delete(id)
	}
}

// of returns the sets of the statuses sts (every status when sts is
// empty), skipping empty ones and repeated statuses.
func (x *statusSets) of(sts []convoy.DeliveryStatus) []*sortedSet[string] {
	var out []*sortedSet[string]
	if len(sts) == 0 {
		for _, set := range x {
			if set != nil && set.len() > 0 {
				out = append(out, set)
			}
		}
		return out
	}
	var seen [len(statusSets{})]bool
	for _, st := range sts {
		i := statusSlot(st)
		if set := x[i]; !seen[i] && set != nil && set.len() > 0 {
			out = append(out, set)
		}
		seen[i] = true
	}
	return out
}

// all returns every ID held, in no particular order.
func (x *statusSets) all() []string {
	var out []string
	for _, set := range x {
		if set == nil {
			continue
		}
		set.ascend(func(id string) bool {
			out = append(out, id)
			return true
		})
	}
	return out
}

// pageDesc returns up to p.Size() IDs below p.Cursor from the union of
// sets, newest first, and the cursor of the next page (empty when no ID
// follows). Each set yields at most one page and one more ID.
func pageDesc(sets []*sortedSet[string], p convoy.Page) (ids []string, next string) {
	n := p.Size()
	for _, set := range sets {
		taken := 0
		set.descend(p.Cursor, p.Cursor != "", func(id string) bool {
			ids = append(ids, id)
			taken++
			return taken <= n
		})
	}
	if len(sets) > 1 {
		slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
	}
	if len(ids) > n {
		return ids[:n], ids[n-1]
	}
	return ids, ""
}

// eventKey orders events by creation time, then ID.
type eventKey struct {
	at dueKey
	id string
}

func compareEventKey(a, b eventKey) int {
	switch {
	case a.at.after(b.at):
		return 1
	case b.at.after(a.at):
		return -1
	}
	return strings.Compare(a.id, b.id)
}

func newEventSet() *sortedSet[eventKey] { return newSortedSet(compareEventKey) }
