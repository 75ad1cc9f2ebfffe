package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// lease is one named lease: who holds it, until when.
type lease struct {
	Holder string    `json:"holder"`
	Expiry time.Time `json:"expiry"`
}

// AcquireLease takes or renews the lease in a plain transaction: leases change
// once a minute or so, never on a login's path. Expired leases stay stored (one
// small record per name) until taken over.
func (s *Storage) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	var held bool
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketLeases))
		var l lease
		ok, err := get(b, name, &l)
		if err != nil {
			return err
		}
		if ok && l.Holder != holder && !expired(l.Expiry, now) {
			held = false
			return nil
		}
		held = true
		return put(b, name, lease{Holder: holder, Expiry: now.Add(ttl).UTC()})
	})
	if err != nil {
		return false, fmt.Errorf("bolt: acquire lease %q: %w", name, err)
	}
	return held, nil
}
