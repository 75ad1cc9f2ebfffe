package bolt

import (
	"context"

	"github.com/dingbridge/dingbridge/storage"
)

// Sessions are written at every login and touched at every SSO use. Errors name
// no session: its ID leads to the cookie.

func (s *Storage) CreateSession(ctx context.Context, sess storage.Session) error {
	return sessions.create(ctx, s, sess)
}

func (s *Storage) GetSession(ctx context.Context, id string) (storage.Session, error) {
	return sessions.get(ctx, s, id)
}

func (s *Storage) UpdateSession(ctx context.Context, id string, update func(storage.Session) (storage.Session, error)) error {
	return sessions.update(ctx, s, id, update)
}

func (s *Storage) DeleteSession(ctx context.Context, id string) error {
	return sessions.delete(ctx, s, id)
}
