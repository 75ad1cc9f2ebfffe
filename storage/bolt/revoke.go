package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// RevokeSubject and RevokeClient are admin operations, rare and not on a login's
// path, so they scan the buckets rather than keep another index: one write
// transaction, every record's JSON decoded once.

// owner is the part of a record these scans look at.
type owner struct {
	Subject  string `json:"subject"`
	ClientID string `json:"clientID"`
}

// RevokeSubject deletes the person's access tokens, refresh tokens (rotated ones
// too) and sessions.
func (s *Storage) RevokeSubject(ctx context.Context, subject string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		match := func(o owner) bool { return o.Subject == subject }
		if err := deleteTokensWhere(tx, match); err != nil {
			return err
		}
		keys, err := matching(tx.Bucket([]byte(bucketSessions)), match)
		if err != nil {
			return err
		}
		// The deletions go into the write-back too, before this commits: an
		// UpdateSession that read the session from the file would otherwise
		// hold it again, and the next commit bring it back.
		s.pending.mu.Lock()
		defer s.pending.mu.Unlock()
		ids := make([]string, 0, len(keys))
		for _, k := range keys {
			ids = append(ids, string(k))
		}
		for id, p := range s.pending.sessions {
			if !p.deleted && p.sess.Subject == subject {
				ids = append(ids, id)
			}
		}
		for _, id := range ids {
			if _, err := deleteSession(tx, id); err != nil {
				return err
			}
			s.pending.deleteSession(id, false)
		}
		s.pending.deferred()
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: revoke subject: %w", err)
	}
	return nil
}

// RevokeClient deletes the client's tokens and consents, and forgets its flows
// in progress (auth requests, codes, device authorizations).
func (s *Storage) RevokeClient(ctx context.Context, clientID string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		match := func(o owner) bool { return o.ClientID == clientID }
		if err := deleteTokensWhere(tx, match); err != nil {
			return err
		}
		for _, name := range []string{bucketConsents, bucketSpentCodes} {
			b := tx.Bucket([]byte(name))
			keys, err := matching(b, match)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: revoke client: %w", err)
	}
	s.flow.revokeClient(clientID)
	return nil
}

// matching returns the keys of the bucket's records that match, collected before
// anything is deleted: deleting under a moving cursor can skip keys.
func matching(b *bbolt.Bucket, match func(owner) bool) ([][]byte, error) {
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var o owner
		if err := json.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		if match(o) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	return keys, err
}

// deleteTokensWhere deletes every access token, refresh token and tombstone that
// match selects, with their index keys.
func deleteTokensWhere(tx *bbolt.Tx, match func(owner) bool) error {
	for _, st := range []struct {
		bucket string
		kind   byte
	}{{bucketAccessTokens, kindAccess}, {bucketRefreshTokens, kindRefresh}, {bucketRotated, kindRefresh}} {
		keys, err := matching(tx.Bucket([]byte(st.bucket)), match)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := deleteToken(tx, st.kind, string(k)); err != nil {
				return err
			}
		}
	}
	return nil
}
