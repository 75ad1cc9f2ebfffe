package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// Clients change only through the admin CLI, so they use plain transactions.

// CreateClient stores c, or fails with storage.ErrAlreadyExists.
func (s *Storage) CreateClient(ctx context.Context, c storage.Client) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketClients))
		if has(b, c.ID) {
			return storage.ErrAlreadyExists
		}
		return put(b, c.ID, utcClient(c))
	})
	if err != nil {
		return fmt.Errorf("bolt: create client %q: %w", c.ID, err)
	}
	return nil
}

// GetClient returns the client, or storage.ErrNotFound.
func (s *Storage) GetClient(ctx context.Context, id string) (storage.Client, error) {
	var c storage.Client
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket([]byte(bucketClients)), id, &c)
		if err == nil && !ok {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.Client{}, fmt.Errorf("bolt: get client %q: %w", id, err)
	}
	return c, nil
}

// ListClients returns every client, ordered by ID.
func (s *Storage) ListClients(ctx context.Context) ([]storage.Client, error) {
	var clients []storage.Client
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketClients)).ForEach(func(k, v []byte) error {
			var c storage.Client
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode client %q: %w", k, err)
			}
			clients = append(clients, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list clients: %w", err)
	}
	return clients, nil
}

// UpdateClient replaces the client with what update returns. The update may not
// change the ID: that would be a create and a delete, and say so.
func (s *Storage) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketClients))
		var c storage.Client
		ok, err := get(b, id, &c)
		if err != nil {
			return err
		}
		if !ok {
			return storage.ErrNotFound
		}
		c, err = update(c)
		if err != nil {
			return err
		}
		if c.ID != id {
			return fmt.Errorf("update changed the ID to %q", c.ID)
		}
		return put(b, id, utcClient(c))
	})
	if err != nil {
		return fmt.Errorf("bolt: update client %q: %w", id, err)
	}
	return nil
}

// DeleteClient removes the client, or fails with storage.ErrNotFound.
func (s *Storage) DeleteClient(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketClients))
		if !has(b, id) {
			return storage.ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete client %q: %w", id, err)
	}
	return nil
}
