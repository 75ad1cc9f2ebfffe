package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// The whole key set is one record, so reading and replacing it is one key.
const keySetKey = "keyset"

// GetKeySet returns the stored set, or a zero KeySet if none was ever stored.
func (s *Storage) GetKeySet(ctx context.Context) (storage.KeySet, error) {
	var ks storage.KeySet
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		_, err := get(tx.Bucket([]byte(bucketKeys)), keySetKey, &ks)
		return err
	})
	if err != nil {
		return storage.KeySet{}, fmt.Errorf("bolt: get key set: %w", err)
	}
	return ks, nil
}

// UpdateKeySet replaces the set with what update returns. Rotation is rare, so this
// is a plain transaction: update is called exactly once.
func (s *Storage) UpdateKeySet(ctx context.Context, update func(storage.KeySet) (storage.KeySet, error)) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketKeys))
		var ks storage.KeySet
		if _, err := get(b, keySetKey, &ks); err != nil {
			return err
		}
		ks, err := update(ks)
		if err != nil {
			return err
		}
		return put(b, keySetKey, utcKeySet(ks))
	})
	if err != nil {
		return fmt.Errorf("bolt: update key set: %w", err)
	}
	return nil
}
