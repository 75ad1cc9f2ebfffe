package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

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

// SessionsOf scans the sessions: it runs when a person leaves, not at logins.
func (s *Storage) SessionsOf(ctx context.Context, subject string) ([]storage.Session, error) {
	now := time.Now()
	var out []storage.Session
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSessions)).ForEach(func(_, v []byte) error {
			var o owner
			if err := json.Unmarshal(v, &o); err != nil || o.Subject != subject {
				return err
			}
			var sess storage.Session
			if err := json.Unmarshal(v, &sess); err != nil {
				return err
			}
			if !expired(sess.Expiry, now) {
				out = append(out, sess)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: sessions of a subject: %w", err)
	}
	return out, nil
}
