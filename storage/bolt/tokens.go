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
const (
	kindAccess  byte = 'a'
	kindRefresh byte = 'r'
)

func grantPrefix(grantID string) []byte {
	k := binary.AppendUvarint(nil, uint64(len(grantID)))
	return append(k, grantID...)
}

func grantKey(grantID string, kind byte, tokenID string) []byte {
	k := append(grantPrefix(grantID), kind)
	return append(k, tokenID...)
}

// IssueTokens stores access and, if not nil, refresh, and deletes the refresh token
// named by replaces, all in one transaction. Everything is checked before anything
// is written, so a missing or expired replaces (storage.ErrNotFound) or a taken ID
// (storage.ErrAlreadyExists) stores nothing.
func (s *Storage) IssueTokens(ctx context.Context, access storage.AccessToken, refresh *storage.RefreshToken, rotate storage.Rotation) error {
	now := time.Now()
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		ab := tx.Bucket([]byte(bucketAccessTokens))
		rb := tx.Bucket([]byte(bucketRefreshTokens))
		gb := tx.Bucket([]byte(bucketGrants))

		var old storage.RefreshToken
		if rotate.ID != "" {
			ok, err := get(rb, rotate.ID, &old)
			if err != nil {
				return err
			}
			if !ok || expired(old.Expiry, now) {
				answer = fmt.Errorf("refresh token to rotate: %w", storage.ErrNotFound)
				return nil
			}
			if !old.RotatedAt.IsZero() && (rotate.Grace <= 0 || now.Sub(old.RotatedAt) > rotate.Grace) {
				answer = fmt.Errorf("refresh token to rotate: %w", storage.ErrAlreadyUsed)
				return nil
			}
		}
		if has(ab, access.ID) || (refresh != nil && has(rb, refresh.ID)) {
			answer = storage.ErrAlreadyExists
			return nil
		}

		if rotate.ID != "" && old.RotatedAt.IsZero() {
			// Kept, marked, until it expires: presenting it again is reuse.
			old.RotatedAt = now.UTC()
			if err := put(rb, rotate.ID, old); err != nil {
				return err
			}
		}
		if err := put(ab, access.ID, utcAccessToken(access)); err != nil {
			return err
		}
		if err := gb.Put(grantKey(access.GrantID, kindAccess, access.ID), nil); err != nil {
			return err
		}
		if refresh == nil {
			return nil
		}
		if err := put(rb, refresh.ID, utcRefreshToken(*refresh)); err != nil {
			return err
		}
		return gb.Put(grantKey(refresh.GrantID, kindRefresh, refresh.ID), nil)
	})
	return wrap("issue tokens", err, answer)
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

// GetRefreshToken returns the token, or storage.ErrNotFound if it is absent or expired.
func (s *Storage) GetRefreshToken(ctx context.Context, id string) (storage.RefreshToken, error) {
	now := time.Now()
	var t storage.RefreshToken
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket([]byte(bucketRefreshTokens)), id, &t)
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
		return deleteToken(tx, bucketAccessTokens, kindAccess, id)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete access token: %w", err)
	}
	return nil
}

// DeleteRefreshToken removes the token, or fails with storage.ErrNotFound.
func (s *Storage) DeleteRefreshToken(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return deleteToken(tx, bucketRefreshTokens, kindRefresh, id)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete refresh token: %w", err)
	}
	return nil
}

// deleteToken removes a token and its grant index entry; an expired token that is
// still stored is removed too.
func deleteToken(tx *bbolt.Tx, bucket string, kind byte, id string) error {
	b := tx.Bucket([]byte(bucket))
	var rec expiring
	ok, err := get(b, id, &rec)
	if err != nil {
		return err
	}
	if !ok {
		return storage.ErrNotFound
	}
	if err := b.Delete([]byte(id)); err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketGrants)).Delete(grantKey(rec.GrantID, kind, id))
}

// RevokeGrant deletes every token of the grant; a grant with no tokens is not an
// error (it may have been revoked already).
func (s *Storage) RevokeGrant(ctx context.Context, grantID string) error {
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
			bucket := bucketAccessTokens
			if k[len(prefix)] == kindRefresh {
				bucket = bucketRefreshTokens
			}
			if err := tx.Bucket([]byte(bucket)).Delete(k[len(prefix)+1:]); err != nil {
				return err
			}
			if err := gb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: revoke grant: %w", err)
	}
	return nil
}
