package bolt

import (
	"bytes"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// walkPage visits, in ascending key order, the keys of b that start with prefix and
// come after prefix+page.Cursor, at most page.Size() of them. visit returns
// the cursor of the item it took. next is set to the cursor of the last
// item visited when more keys follow, and to "" at the end.
func walkPage(b *bbolt.Bucket, prefix []byte, page convoy.Page, visit func(k, v []byte) (string, error), next *string) error {
	c := b.Cursor()
	var k, v []byte
	switch {
	case page.Cursor != "":
		after := join(prefix, []byte(page.Cursor))
		if k, v = c.Seek(after); bytes.Equal(k, after) {
			k, v = c.Next()
		}
	case len(prefix) == 0:
		k, v = c.First()
	default:
		k, v = c.Seek(prefix)
	}
	limit, n, last := page.Size(), 0, ""
	for ; hasPrefix(k, prefix); k, v = c.Next() {
		if n == limit {
			*next = last
			return nil
		}
		cur, err := visit(k, v)
		if err != nil {
			return err
		}
		last = cur
		n++
	}
	*next = ""
	return nil
}

// walkDesc visits, in descending key order, the keys k of b with lo ≤ k <
// hi (hi nil: every key from lo to the end of b), until visit returns
// false.
func walkDesc(b *bbolt.Bucket, lo, hi []byte, visit func(k, v []byte) (bool, error)) error {
	c := b.Cursor()
	var k, v []byte
	if hi == nil {
		k, v = c.Last()
	} else {
		k, v = seekBefore(c, hi)
	}
	for ; k != nil && bytes.Compare(k, lo) >= 0; k, v = c.Prev() {
		more, err := visit(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// seekBefore moves c to the last key before k and returns it, or nil.
func seekBefore(c *bbolt.Cursor, k []byte) ([]byte, []byte) {
	if got, _ := c.Seek(k); got == nil {
		return c.Last()
	}
	return c.Prev()
}

// mergeDesc visits in descending delivery-ID order the union of several
// ranges of a delivery index (the endpoint or the app index), each the
// keys with one of prefixes (owner ID + status class), whose delivery IDs
// come before the ID before (all of them when before is empty). It stops
// when visit returns false.
func mergeDesc(b *bbolt.Bucket, prefixes [][]byte, before string, visit func(id string) (bool, error)) error {
	type head struct {
		c      *bbolt.Cursor
		prefix []byte
		id     []byte // nil once the range is exhausted
	}
	heads := make([]*head, 0, len(prefixes))
	for _, p := range prefixes {
		h := &head{c: b.Cursor(), prefix: p}
		hi := prefixEnd(p)
		if before != "" {
			hi = join(p, []byte(before))
		}
		var k []byte
		if hi == nil {
			k, _ = h.c.Last()
		} else {
			k, _ = seekBefore(h.c, hi)
		}
		if hasPrefix(k, p) {
			h.id = k[len(p):]
		}
		heads = append(heads, h)
	}
	for {
		var top *head
		for _, h := range heads {
			if h.id != nil && (top == nil || bytes.Compare(h.id, top.id) > 0) {
				top = h
			}
		}
		if top == nil {
			return nil
		}
		more, err := visit(string(top.id))
		if err != nil || !more {
			return err
		}
		k, _ := top.c.Prev()
		top.id = nil
		if hasPrefix(k, top.prefix) {
			top.id = k[len(top.prefix):]
		}
	}
}
