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

// gcChunk bounds how many records one write transaction of GarbageCollect deletes,
// so a large backlog never holds the single writer lock long enough to stall logins.
const gcChunk = 1000

// GarbageCollect deletes every expired record and every ended grant revocation.
// Clients, users, consents and keys never expire.
//
// Cost follows what expired, not what is stored: the durable records are found
// through the expiry index (a cursor walk up to now, in a read transaction, then
// up to gcChunk of them deleted per write transaction, each decoded once to find
// its grant key); the flow state in memory is a walk of its maps. An idle server
// with nothing expired reads one index key.
func (s *Storage) GarbageCollect(ctx context.Context, now time.Time) (storage.GCResult, error) {
	var r storage.GCResult
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("bolt: garbage collect: %w", err)
	}
	s.flow.sweep(now, &r)
	// What waits in the write-back goes to the file first, so the expiry index
	// below is current.
	if !s.pending.empty() {
		if err := s.sync(ctx); err != nil {
			return r, fmt.Errorf("bolt: garbage collect: %w", err)
		}
	}
	limit := expiryKey(now, 0, "")[:8]
	for {
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("bolt: garbage collect: %w", err)
		}
		var keys [][]byte
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket([]byte(bucketExpiry)).Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) < 0 && len(keys) < gcChunk; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return r, fmt.Errorf("bolt: garbage collect: %w", err)
		}
		if len(keys) == 0 {
			return r, nil
		}
		var chunk storage.GCResult
		err = s.update(ctx, func(tx *bbolt.Tx) error {
			chunk = storage.GCResult{}
			for _, k := range keys {
				if err := collect(tx, k, now, &chunk); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return r, fmt.Errorf("bolt: garbage collect: %w", err)
		}
		r.AccessTokens += chunk.AccessTokens
		r.RefreshTokens += chunk.RefreshTokens
		r.Sessions += chunk.Sessions
		r.AuthCodes += chunk.AuthCodes
	}
}

// collect handles one expiry key: the record it names is deleted if it has
// expired (it may have been deleted, or have moved on, since the key was read),
// and the key goes in every case.
func collect(tx *bbolt.Tx, key []byte, now time.Time, r *storage.GCResult) error {
	if len(key) < 9 {
		return tx.Bucket([]byte(bucketExpiry)).Delete(key)
	}
	at := time.Unix(0, int64(binary.BigEndian.Uint64(key[:8])))
	kind, id := key[8], string(key[9:])
	switch kind {
	case kindAccess, kindRefresh:
		for _, name := range tokenBuckets(kind) {
			var rec expiring
			ok, err := get(tx.Bucket([]byte(name)), id, &rec)
			if err != nil {
				return fmt.Errorf("decode token: %w", err)
			}
			if !ok || !expired(rec.Expiry, now) || expiryNanos(rec.Expiry) != expiryNanos(at) {
				continue
			}
			if err := deleteToken(tx, kind, id); err != nil {
				return err
			}
			if kind == kindAccess {
				r.AccessTokens++
			} else {
				r.RefreshTokens++
			}
			return nil // deleteToken dropped the key
		}
	case kindSession:
		var rec expiring
		ok, err := get(tx.Bucket([]byte(bucketSessions)), id, &rec)
		if err != nil {
			return fmt.Errorf("decode session: %w", err)
		}
		if ok && expired(rec.Expiry, now) && expiryNanos(rec.Expiry) == expiryNanos(at) {
			if _, err := deleteSession(tx, id); err != nil {
				return err
			}
			r.Sessions++
			return nil
		}
	case kindSpentCode:
		var rec expiring
		ok, err := get(tx.Bucket([]byte(bucketSpentCodes)), id, &rec)
		if err != nil {
			return fmt.Errorf("decode spent code: %w", err)
		}
		if ok && expired(rec.Expiry, now) {
			if err := tx.Bucket([]byte(bucketSpentCodes)).Delete([]byte(id)); err != nil {
				return err
			}
			r.AuthCodes++
		}
	case kindRevocation:
		if until, ok := revokedUntil(tx, id); ok && expired(until, now) {
			if err := tx.Bucket([]byte(bucketRevoked)).Delete([]byte(id)); err != nil {
				return err
			}
		}
	}
	return tx.Bucket([]byte(bucketExpiry)).Delete(key)
}

// Count reads bucket statistics and the sizes of the in-memory tables; no
// record is decoded. RefreshTokens counts live (not rotated) tokens only.
func (s *Storage) Count(ctx context.Context) (storage.RecordCounts, error) {
	var c storage.RecordCounts
	// What the write-back adds to or takes from the file's counts.
	var users, sessions int
	s.pending.mu.Lock()
	codes := len(s.pending.codes)
	for _, p := range s.pending.users {
		if !p.inFile {
			users++
		}
	}
	for _, p := range s.pending.sessions {
		switch {
		case !p.deleted && !p.inFile:
			sessions++
		case p.deleted && p.inFile:
			sessions--
		}
	}
	s.pending.mu.Unlock()
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		n := func(name string) int { return tx.Bucket([]byte(name)).Stats().KeyN }
		c.AccessTokens, c.RefreshTokens = n(bucketAccessTokens), n(bucketRefreshTokens)
		c.Sessions, c.Users, c.Clients, c.Consents = n(bucketSessions)+sessions, n(bucketUsers)+users, n(bucketClients), n(bucketConsents)
		c.AuthCodes = n(bucketSpentCodes) + codes // spent ones; those not yet claimed are added below
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("bolt: count: %w", err)
	}
	now := time.Now()
	c.AuthRequests, c.AuthCodes = s.flow.authRequests.count(now), c.AuthCodes+s.flow.codes.count(now)
	c.UpstreamStates, c.Devices = s.flow.states.count(now), s.flow.devices.count(now)
	return c, nil
}
