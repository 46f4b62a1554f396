package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// TestUUIDsEncodeInBinary: the IDs of a uuid[] parameter go in pgx's
// binary format at the first try (a []string does not: see uuids), nil
// stays NULL, and a string that is not a UUID is left for PostgreSQL to
// refuse.
func TestUUIDsEncodeInBinary(t *testing.T) {
	m := pgtype.NewMap()
	ids := []string{convoy.NewID(), convoy.NewID()}
	_, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, nil)
	require.Error(t, err, "pgx now encodes a []string as uuid[] in binary: uuids may be unneeded")

	buf, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, uuids(ids), nil)
	require.NoError(t, err)
	var back []string
	require.NoError(t, m.Scan(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, buf, &back))
	require.Equal(t, ids, back)

	buf, err = m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, uuids(nil), nil)
	require.NoError(t, err)
	require.Nil(t, buf, "nil IDs are NULL")
	require.Equal(t, []string{"not-a-uuid"}, uuids([]string{"not-a-uuid"}))
}

// BenchmarkUUIDArrayParam encodes 64 IDs for a uuid[] parameter as pgx
// does: strings (binary refused, then text; the baseline) against
// uuids. Compare the two ns/op of the same run.
func BenchmarkUUIDArrayParam(b *testing.B) {
	m := pgtype.NewMap()
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = convoy.NewID()
	}
	b.Run("strings", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, nil); err == nil {
				b.Fatal("binary accepted")
			}
			if _, err := m.Encode(pgtype.UUIDArrayOID, pgtype.TextFormatCode, ids, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uuids", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, uuids(ids), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
