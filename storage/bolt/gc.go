package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// gcChunk bounds how many records one write transaction of GarbageCollect deletes,
// so a large backlog never holds the single writer lock long enough to stall logins.
const gcChunk = 1000

// GarbageCollect deletes every auth request, code, token and upstream state whose
// Expiry is before now. Clients, users and keys never expire.
//
// Cost: each bucket is scanned in full (every record's JSON decoded) in read
// transactions, which do not block writers; only the expired records are then
// deleted, gcChunk at a time, in write transactions. That is about 2.5µs per stored
// record (0.5s for 200,000 live refresh tokens on 2 cores); an expiry-ordered index
// would make a sweep proportional to what expired, if that ever matters.
func (s *Storage) GarbageCollect(ctx context.Context, now time.Time) (storage.GCResult, error) {
	var r storage.GCResult
	steps := []struct {
		bucket string
		kind   byte // token kind for the grant index, 0 for records outside it
		count  *int
	}{
		{bucketAuthRequests, 0, &r.AuthRequests},
		{bucketCodes, 0, &r.AuthCodes},
		{bucketAccessTokens, kindAccess, &r.AccessTokens},
		{bucketRefreshTokens, kindRefresh, &r.RefreshTokens},
		{bucketUpstreamStates, 0, &r.UpstreamStates},
		{bucketSessions, 0, &r.Sessions},
		{bucketDevices, 0, &r.Devices},
	}
	for _, st := range steps {
		n, err := s.collect(ctx, st.bucket, st.kind, now)
		*st.count = n
		if err != nil {
			return r, fmt.Errorf("bolt: garbage collect %s: %w", st.bucket, err)
		}
	}
	return r, nil
}

// collect sweeps one bucket: find up to gcChunk expired keys after the last one
// seen, delete them, repeat until the scan reaches the end.
func (s *Storage) collect(ctx context.Context, bucket string, kind byte, now time.Time) (int, error) {
	removed := 0
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var keys [][]byte
		done := true
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket([]byte(bucket)).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil; k, v = c.Next() {
				var rec expiring
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("decode record: %w", err)
				}
				if !expired(rec.Expiry, now) {
					continue
				}
				keys = append(keys, bytes.Clone(k))
				if len(keys) == gcChunk {
					after, done = bytes.Clone(k), false
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		if len(keys) > 0 {
			n, err := s.deleteExpired(bucket, kind, keys, now)
			removed += n
			if err != nil {
				return removed, err
			}
		}
		if done {
			return removed, nil
		}
	}
}

// deleteExpired looks at each record again inside the write transaction: it may
// have been deleted (or consumed) since the scan.
func (s *Storage) deleteExpired(bucket string, kind byte, keys [][]byte, now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		n = 0
		b := tx.Bucket([]byte(bucket))
		gb := tx.Bucket([]byte(bucketGrants))
		for _, k := range keys {
			var rec expiring
			ok, err := get(b, string(k), &rec)
			if err != nil {
				return fmt.Errorf("decode record: %w", err)
			}
			if !ok || !expired(rec.Expiry, now) {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			if kind != 0 {
				if err := gb.Delete(grantKey(rec.GrantID, kind, string(k))); err != nil {
					return err
				}
			}
			if bucket == bucketDevices {
				if err := deleteUserCode(tx, rec.UserCode, string(k)); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
