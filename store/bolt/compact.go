package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// compactTxSize bounds the bytes of keys and values Compact writes in one
// transaction of the new file.
const compactTxSize = 64 << 20

// Compact writes a compacted copy of the store file at src to a new file
// at dst, which must not exist, and syncs it. A bbolt file never shrinks:
// the pages freed by deletions (DeleteBefore, DeleteApp) are reused for
// new records but stay in the file, so a store that once held much more
// than it holds now keeps its peak size. The copy holds only the live
// records and indexes, in pages filled completely, and opens as the
// original (same schema version). To reclaim space in place:
//
//	_ = st.Close()
//	err := bolt.Compact(path, path+".compact", nil)
//	// on success: os.Rename(path+".compact", path), then bolt.Open(path, nil)
//
// Cost: Compact reads every live key and value of src once and writes it
// to dst, in transactions of up to 64 MiB, so it takes time proportional
// to the live data (a few seconds per 100 MiB; 270 MiB took 8 s on a small
// two-core machine) and needs free disk space for it (at most the size of
// src). src must not be
// in use: Compact takes the file's lock as Open does and fails with
// ErrLocked after opts.Timeout when a Store has it open, so stop the
// dispatcher and close the store first. Only opts.Timeout and
// opts.FileMode (for dst) are used; opts may be nil. When it fails it
// removes dst; src is never modified.
func Compact(src, dst string, opts *Options) (err error) {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("convoy: bolt: compact to %s: %w", dst, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("convoy: bolt: compact to %s: %w", dst, err)
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("convoy: bolt: compact %s: %w", src, err)
	}
	from, err := bbolt.Open(src, o.FileMode, &bbolt.Options{Timeout: o.Timeout, ReadOnly: true})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("%w: %s (waited %v)", ErrLocked, src, o.Timeout)
		}
		return fmt.Errorf("convoy: bolt: compact %s: %w", src, err)
	}
	defer from.Close()
	if err := from.View(checkVersion); err != nil {
		return err
	}
	to, err := bbolt.Open(dst, o.FileMode, &bbolt.Options{Timeout: o.Timeout, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("convoy: bolt: compact to %s: %w", dst, err)
	}
	defer func() {
		if cerr := to.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("convoy: bolt: compact to %s: %w", dst, cerr)
		}
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	if err := bbolt.Compact(to, from, compactTxSize); err != nil {
		return fmt.Errorf("convoy: bolt: compact %s to %s: %w", src, dst, err)
	}
	return nil
}

// checkVersion checks that tx is of a convoy store file of a schema
// version this package opens.
func checkVersion(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("%w: not a convoy store file", ErrSchemaVersion)
	}
	v := meta.Get(keySchema)
	if len(v) != 8 {
		return fmt.Errorf("%w: malformed schema version", ErrSchemaVersion)
	}
	if n := binary.BigEndian.Uint64(v); n != SchemaVersion && n != schemaV1 {
		return fmt.Errorf("%w: file has version %d, this package knows %d", ErrSchemaVersion, n, SchemaVersion)
	}
	return nil
}
