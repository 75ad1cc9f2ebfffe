package bolt

import (
	"encoding/binary"
	"time"

	"go.etcd.io/bbolt"
)

// The expiry index lets GarbageCollect read only what has expired: a key per
// expiring durable record, ordered by expiry, so a sweep is a cursor walk from
// the first key up to now. A key is
//
//	big-endian uint64 unix nanoseconds | kind | record ID
//
// with an empty value. Every write of an expiring record keeps its key in step in
// the same transaction (an update that moves the expiry moves the key), so the
// index holds one key per record; the sweeper still tolerates a key whose
// record is gone or has moved, and drops it.
const (
	kindAccess     byte = 'a'
	kindRefresh    byte = 'r' // live or rotated (tombstone)
	kindSession    byte = 's'
	kindRevocation byte = 'g'
	kindSpentCode  byte = 'c'
)

// expiryNanos maps t to the index's order. Times before 1970 (a zero Expiry:
// expired long ago) sort first.
func expiryNanos(t time.Time) uint64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	if t.After(time.Unix(0, 1<<63-1)) {
		return 1<<63 - 1
	}
	return uint64(t.UnixNano())
}

func expiryKey(t time.Time, kind byte, id string) []byte {
	k := make([]byte, 0, 9+len(id))
	k = binary.BigEndian.AppendUint64(k, expiryNanos(t))
	k = append(k, kind)
	return append(k, id...)
}

// expiryFill packs the index's pages: new keys land mostly at its end (later
// expiries) and the sweeper takes them from its start, the pattern for which
// bbolt's default of splitting pages half full wastes half the space.
const expiryFill = 0.9

// indexExpiry records that the record of kind and id expires at t.
func indexExpiry(tx *bbolt.Tx, t time.Time, kind byte, id string) error {
	b := tx.Bucket([]byte(bucketExpiry))
	b.FillPercent = expiryFill
	return b.Put(expiryKey(t, kind, id), nil)
}

// unindexExpiry removes what indexExpiry recorded.
func unindexExpiry(tx *bbolt.Tx, t time.Time, kind byte, id string) error {
	return tx.Bucket([]byte(bucketExpiry)).Delete(expiryKey(t, kind, id))
}

// reindexExpiry moves a record's key when its expiry changed.
func reindexExpiry(tx *bbolt.Tx, from, to time.Time, kind byte, id string) error {
	if expiryNanos(from) == expiryNanos(to) {
		return nil
	}
	if err := unindexExpiry(tx, from, kind, id); err != nil {
		return err
	}
	return indexExpiry(tx, to, kind, id)
}
