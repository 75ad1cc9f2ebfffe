package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dingbridge/dingbridge/storage"
)

// The key set is one row, replaced whole and only if its revision is still the
// one read: of two replicas rotating at once, one wins and the other's update
// runs again on the winner's set.

func (s *Storage) GetKeySet(ctx context.Context) (storage.KeySet, error) {
	ks, _, err := s.readKeySet(ctx)
	if err != nil {
		return storage.KeySet{}, wrap("get key set", err)
	}
	return ks, nil
}

// readKeySet returns the set and its revision; 0 and a zero set if none is stored.
func (s *Storage) readKeySet(ctx context.Context) (storage.KeySet, int64, error) {
	var data []byte
	var rev int64
	err := s.pool.QueryRow(ctx, "SELECT data, rev FROM key_set").Scan(&data, &rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.KeySet{}, 0, nil
	}
	if err != nil {
		return storage.KeySet{}, 0, err
	}
	var ks storage.KeySet
	if err := decode(data, &ks); err != nil {
		return storage.KeySet{}, 0, err
	}
	return ks, rev, nil
}

func (s *Storage) UpdateKeySet(ctx context.Context, update func(storage.KeySet) (storage.KeySet, error)) error {
	err := optimistic(ctx, func() (bool, error) {
		ks, rev, err := s.readKeySet(ctx)
		if err != nil {
			return false, err
		}
		ks, err = update(ks)
		if err != nil {
			return false, err
		}
		data, err := encode(ks)
		if err != nil {
			return false, err
		}
		sql := "UPDATE key_set SET data = $2, rev = rev + 1 WHERE rev = $1"
		if rev == 0 {
			sql = "INSERT INTO key_set (rev, data) SELECT 1, $2 WHERE $1::bigint = 0 ON CONFLICT DO NOTHING"
		}
		tag, err := s.pool.Exec(ctx, sql, rev, data)
		return err == nil && tag.RowsAffected() == 1, err
	})
	return wrap("update key set", err)
}

// AcquireLease is one conditional upsert: the row is taken over when it is
// holder's already or its time is up. Expiry is the database's clock, the one
// clock every replica shares.
func (s *Storage) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, holder, expiry) VALUES ($1, $2, clock_timestamp() + $3::interval)
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expiry = EXCLUDED.expiry
		WHERE leases.holder = EXCLUDED.holder OR leases.expiry <= clock_timestamp()`, name, holder, ttl)
	if err != nil {
		return false, wrap("acquire lease "+name, err)
	}
	return tag.RowsAffected() == 1, nil
}
