package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"
)

// Schema versions Open knows. A file of an older version is migrated to
// SchemaVersion when opened.
const (
	// schemaV1 is the layout of convoy v0.1.0: an app's events were
	// indexed by ID in idx_app_events, and there were no type, app-time or
	// app-delivery indexes.
	schemaV1 = 1
)

// bucketV1AppEvents is schema 1's index of an app's events (appID +
// eventID), replaced by bucketAppEventCreated.
var bucketV1AppEvents = []byte("idx_app_events")

// v2Indexes are the buckets schema 2 added, built by migrateV1.
var v2Indexes = [][]byte{bucketAppEventCreated, bucketTypeEventCreated, bucketAppTypeEventCreated, bucketAppDeliveries}

// migrateChunk is how many records one migration transaction reads, so
// that migrating a large file needs neither much memory nor one huge
// commit.
const migrateChunk = 10000

// openSchema creates the buckets of a new file, checks the schema version
// of an existing one, and migrates an older file to SchemaVersion.
func openSchema(db *bbolt.DB) error {
	var version uint64
	if err := db.Update(func(tx *bbolt.Tx) (err error) {
		version, err = initSchema(tx)
		return err
	}); err != nil {
		return err
	}
	if version == schemaV1 {
		return migrateV1(db)
	}
	return nil
}

// initSchema creates the buckets of a new file, or checks the schema
// version of an existing one. It returns the file's version; the buckets
// are only created for a file of the current one.
func initSchema(tx *bbolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bbolt.Bucket) error {
			empty = false
			return nil
		})
		if !empty {
			return 0, fmt.Errorf("%w: no schema version in a non-empty file", ErrSchemaVersion)
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return 0, err
		}
		if err := putVersion(meta, SchemaVersion); err != nil {
			return 0, err
		}
	} else {
		v := meta.Get(keySchema)
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: malformed schema version", ErrSchemaVersion)
		}
		switch n := binary.BigEndian.Uint64(v); n {
		case SchemaVersion:
		case schemaV1:
			return n, nil
		default:
			return 0, fmt.Errorf("%w: file has version %d, this package knows %d", ErrSchemaVersion, n, SchemaVersion)
		}
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return 0, err
		}
	}
	return SchemaVersion, nil
}

func putVersion(meta *bbolt.Bucket, v uint64) error {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return meta.Put(keySchema, b)
}

// migrateV1 turns a schema 1 file into a schema 2 one: it builds the
// indexes schema 2 added from the event and delivery records, drops
// idx_app_events, and sets the version, which it changes last. It reads
// every event and delivery once, in transactions of migrateChunk records.
// An interrupted migration leaves a file of version 1, which the next Open
// migrates from the start; v0.1.0 can still open it meanwhile, since it
// ignores the buckets it does not know.
func migrateV1(db *bbolt.DB) error {
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range v2Indexes {
			if tx.Bucket(name) != nil {
				if err := tx.DeleteBucket(name); err != nil { // from an interrupted run
					return err
				}
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("convoy: bolt: migrate from schema 1: %w", err)
	}
	steps := []struct {
		records []byte
		index   func(tx *bbolt.Tx, v []byte) error
	}{
		{bucketEvents, func(tx *bbolt.Tx, v []byte) error {
			ev, err := decodeEvent(v)
			if err != nil {
				return err
			}
			for _, ik := range eventIndexKeys(ev) {
				if !slices.ContainsFunc(v2Indexes, func(b []byte) bool { return bytes.Equal(b, ik.bucket) }) {
					continue // kept from schema 1
				}
				if err := tx.Bucket(ik.bucket).Put(ik.key, present); err != nil {
					return err
				}
			}
			return nil
		}},
		{bucketDeliveries, func(tx *bbolt.Tx, v []byte) error {
			d, err := decodeDelivery(v)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketAppDeliveries).Put(appDeliveryKey(d.AppID, d.Status, d.ID), present)
		}},
	}
	for _, step := range steps {
		var pos []byte // the next key to read; nil for the first
		for done := false; !done; {
			if err := db.Update(func(tx *bbolt.Tx) error {
				for _, name := range v2Indexes {
					tx.Bucket(name).FillPercent = appendFill
				}
				c := tx.Bucket(step.records).Cursor()
				k, v := c.First()
				if pos != nil {
					k, v = c.Seek(pos)
				}
				for n := 0; n < migrateChunk; n++ {
					if k == nil {
						done = true
						return nil
					}
					if err := step.index(tx, v); err != nil {
						return fmt.Errorf("%s %s: %w", step.records, k, err)
					}
					k, v = c.Next()
				}
				pos = clone(k)
				done = pos == nil
				return nil
			}); err != nil {
				return fmt.Errorf("convoy: bolt: migrate from schema 1: %w", err)
			}
		}
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketV1AppEvents) != nil {
			if err := tx.DeleteBucket(bucketV1AppEvents); err != nil {
				return err
			}
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return putVersion(tx.Bucket(bucketMeta), SchemaVersion)
	}); err != nil {
		return fmt.Errorf("convoy: bolt: migrate from schema 1: %w", err)
	}
	return nil
}
