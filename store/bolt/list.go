package bolt

import (
	"bytes"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// walkPage visits, in key order, the keys of b that start with prefix and
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

// mergeWalk visits in delivery-ID order the union of several ranges of the
// endpoint index, each the keys with one of prefixes (endpoint ID +
// status), whose delivery IDs come after the ID after. It stops when visit
// returns false.
func mergeWalk(b *bbolt.Bucket, prefixes [][]byte, after string, visit func(id string) (bool, error)) error {
	type head struct {
		c      *bbolt.Cursor
		prefix []byte
		id     []byte // nil once the range is exhausted
	}
	heads := make([]*head, 0, len(prefixes))
	for _, p := range prefixes {
		h := &head{c: b.Cursor(), prefix: p}
		start := join(p, []byte(after))
		k, _ := h.c.Seek(start)
		if after != "" && bytes.Equal(k, start) {
			k, _ = h.c.Next()
		}
		if hasPrefix(k, p) {
			h.id = k[len(p):]
		}
		heads = append(heads, h)
	}
	for {
		var min *head
		for _, h := range heads {
			if h.id != nil && (min == nil || bytes.Compare(h.id, min.id) < 0) {
				min = h
			}
		}
		if min == nil {
			return nil
		}
		more, err := visit(string(min.id))
		if err != nil || !more {
			return err
		}
		k, _ := min.c.Next()
		min.id = nil
		if hasPrefix(k, min.prefix) {
			min.id = k[len(min.prefix):]
		}
	}
}
