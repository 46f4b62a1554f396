package memory

import (
	"slices"

	"github.com/convoykit/convoy"
)

// idIndex is a set of record IDs kept in ascending order, the order every
// list of the Store contract uses. IDs are time-ordered UUIDs, so inserts
// are nearly always appends.
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

// page returns up to p.Size() IDs after p.Cursor that keep accepts (all
// when keep is nil), and the cursor of the next page: the last ID returned
// when more matching IDs follow, empty otherwise. The cursor is an ID, so a
// page boundary survives the deletion of the record it names.
func (x *idIndex) page(p convoy.Page, keep func(id string) bool) (ids []string, next string) {
	start := 0
	if p.Cursor != "" {
		i, found := slices.BinarySearch(x.ids, p.Cursor)
		if found {
			i++
		}
		start = i
	}
	n := p.Size()
	for _, id := range x.ids[start:] {
		if keep != nil && !keep(id) {
			continue
		}
		if len(ids) == n {
			return ids, ids[n-1]
		}
		ids = append(ids, id)
	}
	return ids, ""
}
