package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// The grants bucket indexes every stored token by grant, so RevokeGrant reads only
// the tokens it deletes instead of decoding every token in the file. The price is
// one small extra key per token, written and deleted in the same transaction as the
// token (IssueTokens, Delete*, RevokeGrant, GarbageCollect).
//
// A key is uvarint(len(grantID)) | grantID | kind | tokenID. The length prefix
// makes the grant part unambiguous whatever bytes an ID holds, so a prefix scan for
// one grant can never run into another's keys.

func grantPrefix(grantID string) []byte {
	k := binary.AppendUvarint(nil, uint64(len(grantID)))
	return append(k, grantID...)
}

func grantKey(grantID string, kind byte, tokenID string) []byte {
	k := append(grantPrefix(grantID), kind)
	return append(k, tokenID...)
}

// tombstone is what is kept of a rotated refresh token: what reuse detection
// and revocation need, a third of the whole record. Its JSON names match
// storage.RefreshToken's, so it reads back as one with the rest zero.
type tombstone struct {
	ID        string    `json:"id"`
	GrantID   string    `json:"grantID"`
	ClientID  string    `json:"clientID"`
	Subject   string    `json:"subject"`
	Expiry    time.Time `json:"expiry"`
	RotatedAt time.Time `json:"rotatedAt"`
	Successor string    `json:"successor,omitempty"`
}

func tombstoneOf(t storage.RefreshToken) tombstone {
	return tombstone{ID: t.ID, GrantID: t.GrantID, ClientID: t.ClientID, Subject: t.Subject,
		Expiry: utc(t.Expiry), RotatedAt: utc(t.RotatedAt), Successor: t.Successor}
}

// getRefresh finds a refresh token, live or rotated.
func getRefresh(tx *bbolt.Tx, id string, t *storage.RefreshToken) (bool, error) {
	ok, err := get(tx.Bucket([]byte(bucketRefreshTokens)), id, t)
	if err != nil || ok {
		return ok, err
	}
	return get(tx.Bucket([]byte(bucketRotated)), id, t)
}

// IssueTokens stores access and, if not nil, refresh, and rotates the refresh
// token rotate names, all in one batched transaction. Everything is checked
// before anything is written, so a refusal — a revoked grant (ErrRevoked), a
// missing or expired token to rotate (ErrNotFound), a rotation refused
// (ErrAlreadyUsed), a taken ID (ErrAlreadyExists) — stores nothing.
func (s *Storage) IssueTokens(ctx context.Context, access storage.AccessToken, refresh *storage.RefreshToken, rotate storage.Rotation) error {
	now := time.Now()
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		ab := tx.Bucket([]byte(bucketAccessTokens))
		rb := tx.Bucket([]byte(bucketRefreshTokens))
		if revoked(tx, access.GrantID, now) || (refresh != nil && revoked(tx, refresh.GrantID, now)) {
			answer = storage.ErrRevoked
			return nil
		}
		var old storage.RefreshToken
		var replace string // a successor the retry replaces
		if rotate.ID != "" {
			ok, err := getRefresh(tx, rotate.ID, &old)
			if err != nil {
				return err
			}
			if !ok || expired(old.Expiry, now) {
				answer = fmt.Errorf("refresh token to rotate: %w", storage.ErrNotFound)
				return nil
			}
			if !old.RotatedAt.IsZero() {
				if rotate.Grace <= 0 || now.Sub(old.RotatedAt) > rotate.Grace {
					answer = fmt.Errorf("refresh token to rotate: %w", storage.ErrAlreadyUsed)
					return nil
				}
				if old.Successor != "" {
					if has(tx.Bucket([]byte(bucketRotated)), old.Successor) {
						// The client did use the answer it says it never got.
						answer = fmt.Errorf("refresh token to rotate: successor rotated already: %w", storage.ErrAlreadyUsed)
						return nil
					}
					if has(rb, old.Successor) {
						replace = old.Successor
					}
				}
			}
		}
		if has(ab, access.ID) || (refresh != nil && (has(rb, refresh.ID) || has(tx.Bucket([]byte(bucketRotated)), refresh.ID))) {
			answer = storage.ErrAlreadyExists
			return nil
		}

		if rotate.ID != "" {
			if old.RotatedAt.IsZero() {
				old.RotatedAt = now.UTC()
			}
			old.Successor = ""
			if refresh != nil {
				old.Successor = refresh.ID
			}
			if err := rb.Delete([]byte(rotate.ID)); err != nil {
				return err
			}
			// Same ID, grant and expiry: the index keys stay as they are.
			if err := put(tx.Bucket([]byte(bucketRotated)), rotate.ID, tombstoneOf(old)); err != nil {
				return err
			}
			if replace != "" {
				if err := deleteToken(tx, kindRefresh, replace); err != nil {
					return err
				}
			}
		}
		access = utcAccessToken(access)
		if err := putToken(tx, ab, kindAccess, access.ID, access.GrantID, access.Expiry, access); err != nil {
			return err
		}
		if refresh == nil {
			return nil
		}
		r := utcRefreshToken(*refresh)
		r.RotatedAt, r.Successor = time.Time{}, ""
		return putToken(tx, rb, kindRefresh, r.ID, r.GrantID, r.Expiry, r)
	})
	return wrap("issue tokens", err, answer)
}

// putToken stores a token with its grant and expiry keys.
func putToken(tx *bbolt.Tx, b *bbolt.Bucket, kind byte, id, grantID string, expiry time.Time, v any) error {
	if err := put(b, id, v); err != nil {
		return err
	}
	if err := tx.Bucket([]byte(bucketGrants)).Put(grantKey(grantID, kind, id), nil); err != nil {
		return err
	}
	return indexExpiry(tx, expiry, kind, id)
}

// GetAccessToken returns the token, or storage.ErrNotFound if it is absent or expired.
func (s *Storage) GetAccessToken(ctx context.Context, id string) (storage.AccessToken, error) {
	now := time.Now()
	var t storage.AccessToken
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket([]byte(bucketAccessTokens)), id, &t)
		if err == nil && (!ok || expired(t.Expiry, now)) {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.AccessToken{}, fmt.Errorf("bolt: get access token: %w", err)
	}
	return t, nil
}

// GetRefreshToken returns the token, live or a rotated one's tombstone, or
// storage.ErrNotFound if it is absent or expired.
func (s *Storage) GetRefreshToken(ctx context.Context, id string) (storage.RefreshToken, error) {
	now := time.Now()
	var t storage.RefreshToken
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := getRefresh(tx, id, &t)
		if err == nil && (!ok || expired(t.Expiry, now)) {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.RefreshToken{}, fmt.Errorf("bolt: get refresh token: %w", err)
	}
	return t, nil
}

// DeleteAccessToken removes the token, or fails with storage.ErrNotFound.
func (s *Storage) DeleteAccessToken(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return deleteToken(tx, kindAccess, id)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete access token: %w", err)
	}
	return nil
}

// DeleteRefreshToken removes the token, live or rotated, or fails with storage.ErrNotFound.
func (s *Storage) DeleteRefreshToken(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return deleteToken(tx, kindRefresh, id)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete refresh token: %w", err)
	}
	return nil
}

// tokenBuckets are where a token of kind may be stored.
func tokenBuckets(kind byte) []string {
	if kind == kindAccess {
		return []string{bucketAccessTokens}
	}
	return []string{bucketRefreshTokens, bucketRotated}
}

// deleteToken removes a token with its grant and expiry keys, expired or not,
// or fails with storage.ErrNotFound.
func deleteToken(tx *bbolt.Tx, kind byte, id string) error {
	for _, name := range tokenBuckets(kind) {
		b := tx.Bucket([]byte(name))
		var rec expiring
		ok, err := get(b, id, &rec)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketGrants)).Delete(grantKey(rec.GrantID, kind, id)); err != nil {
			return err
		}
		return unindexExpiry(tx, rec.Expiry, kind, id)
	}
	return storage.ErrNotFound
}

// revoked reports whether the grant's revocation lasts beyond now.
func revoked(tx *bbolt.Tx, grantID string, now time.Time) bool {
	until, ok := revokedUntil(tx, grantID)
	return ok && !expired(until, now)
}

func revokedUntil(tx *bbolt.Tx, grantID string) (time.Time, bool) {
	v := tx.Bucket([]byte(bucketRevoked)).Get([]byte(grantID))
	if len(v) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

// RevokeGrant deletes every token of the grant and records the revocation, in
// one transaction: IssueTokens, in transactions of its own, runs wholly before
// (its tokens are deleted here) or wholly after (it sees the revocation).
func (s *Storage) RevokeGrant(ctx context.Context, grantID string, until time.Time) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		gb := tx.Bucket([]byte(bucketGrants))
		prefix := grantPrefix(grantID)
		// Collect first: deleting under a moving cursor can skip keys.
		var keys [][]byte
		c := gb.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			err := deleteToken(tx, k[len(prefix)], string(k[len(prefix)+1:]))
			if err == storage.ErrNotFound {
				err = gb.Delete(k) // an entry whose token is gone: drop it too
			}
			if err != nil {
				return err
			}
		}
		if prev, ok := revokedUntil(tx, grantID); ok {
			if !until.After(prev) {
				return nil
			}
			if err := unindexExpiry(tx, prev, kindRevocation, grantID); err != nil {
				return err
			}
		}
		v := binary.BigEndian.AppendUint64(nil, expiryNanos(until))
		if err := tx.Bucket([]byte(bucketRevoked)).Put([]byte(grantID), v); err != nil {
			return err
		}
		return indexExpiry(tx, until, kindRevocation, grantID)
	})
	if err != nil {
		return fmt.Errorf("bolt: revoke grant: %w", err)
	}
	return nil
}
