package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// migrateFrom1 turns a schema 1 file into schema 2 inside the opening transaction:
// the ephemeral buckets go, rotated refresh tokens become tombstones, and the
// expiry index is built from every expiring durable record (one decode each, once).
func migrateFrom1(tx *bbolt.Tx) error {
	for _, name := range schema1Ephemeral {
		if err := tx.DeleteBucket([]byte(name)); err != nil && !errors.Is(err, bbolt.ErrBucketNotFound) {
			return fmt.Errorf("drop %s: %w", name, err)
		}
	}
	if err := indexBucket(tx, bucketAccessTokens, kindAccess); err != nil {
		return err
	}
	if err := indexBucket(tx, bucketSessions, kindSession); err != nil {
		return err
	}
	rb := tx.Bucket([]byte(bucketRefreshTokens))
	var rotated [][]byte
	err := rb.ForEach(func(k, v []byte) error {
		var t storage.RefreshToken
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode refresh token: %w", err)
		}
		if !t.RotatedAt.IsZero() {
			rotated = append(rotated, bytes.Clone(k))
		}
		return indexExpiry(tx, t.Expiry, kindRefresh, string(k))
	})
	if err != nil {
		return err
	}
	tb := tx.Bucket([]byte(bucketRotated))
	for _, k := range rotated {
		var t storage.RefreshToken
		if _, err := get(rb, string(k), &t); err != nil {
			return err
		}
		if err := put(tb, string(k), tombstoneOf(t)); err != nil {
			return err
		}
		if err := rb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func indexBucket(tx *bbolt.Tx, bucket string, kind byte) error {
	return tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
		var rec expiring
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s record: %w", bucket, err)
		}
		return indexExpiry(tx, rec.Expiry, kind, string(k))
	})
}
