package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/dingbridge/dingbridge/storage"
)

// optimistic runs attempt until it is done. An attempt reads a record with its
// revision and writes the update only if the revision is unchanged; done=false
// means another writer came first, so the update is made again on what that
// writer stored. This is why update callbacks may run more than once.
func optimistic(ctx context.Context, attempt func() (done bool, err error)) error {
	for {
		done, err := attempt()
		if err != nil || done {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Clients change only through the admin CLI.

func (s *Storage) CreateClient(ctx context.Context, c storage.Client) error {
	err := insertOnce(ctx, s, "INSERT INTO clients (id, data) VALUES ($1, $2) ON CONFLICT DO NOTHING", c, c.ID)
	return wrap(fmt.Sprintf("create client %q", c.ID), err)
}

func (s *Storage) GetClient(ctx context.Context, id string) (storage.Client, error) {
	var c storage.Client
	var data []byte
	err := notFound(s.pool.QueryRow(ctx, "SELECT data FROM clients WHERE id = $1", id).Scan(&data))
	if err == nil {
		err = decode(data, &c)
	}
	if err != nil {
		return storage.Client{}, wrap(fmt.Sprintf("get client %q", id), err)
	}
	return c, nil
}

func (s *Storage) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.pool.Query(ctx, "SELECT data FROM clients ORDER BY id")
	if err != nil {
		return nil, wrap("list clients", err)
	}
	defer rows.Close()
	var out []storage.Client
	for rows.Next() {
		var data []byte
		var c storage.Client
		if err := rows.Scan(&data); err != nil {
			return nil, wrap("list clients", err)
		}
		if err := decode(data, &c); err != nil {
			return nil, wrap("list clients", err)
		}
		out = append(out, c)
	}
	return out, wrap("list clients", rows.Err())
}

func (s *Storage) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) error {
	err := optimistic(ctx, func() (bool, error) {
		var data []byte
		var rev int64
		if err := s.pool.QueryRow(ctx, "SELECT data, rev FROM clients WHERE id = $1", id).Scan(&data, &rev); err != nil {
			return false, notFound(err)
		}
		var c storage.Client
		if err := decode(data, &c); err != nil {
			return false, err
		}
		c, err := update(c)
		if err != nil {
			return false, err
		}
		if c.ID != id {
			return false, fmt.Errorf("update changed the ID to %q", c.ID)
		}
		if data, err = encode(c); err != nil {
			return false, err
		}
		tag, err := s.pool.Exec(ctx, "UPDATE clients SET data = $3, rev = rev + 1 WHERE id = $1 AND rev = $2", id, rev, data)
		return err == nil && tag.RowsAffected() == 1, err
	})
	return wrap(fmt.Sprintf("update client %q", id), err)
}

func (s *Storage) DeleteClient(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM clients WHERE id = $1", id)
	if err == nil && tag.RowsAffected() == 0 {
		err = storage.ErrNotFound
	}
	return wrap(fmt.Sprintf("delete client %q", id), err)
}

// errIDChanged: an update callback returned a record under another ID.
var errIDChanged = errors.New("update changed the ID")

// insertOnce runs an INSERT … ON CONFLICT DO NOTHING whose last argument is the
// record's JSON: storage.ErrAlreadyExists when it inserted nothing.
func insertOnce(ctx context.Context, s *Storage, sql string, rec any, args ...any) error {
	data, err := encode(rec)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, sql, append(args, data)...)
	if err == nil && tag.RowsAffected() == 0 {
		err = storage.ErrAlreadyExists
	}
	return err
}
