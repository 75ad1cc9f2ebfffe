package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dingbridge/dingbridge/storage"
)

// grantLockSpace is the first key of the two-key advisory locks on grants
// ("grnt"); the second is hashtext(grant ID). Two-key locks never meet the
// one-key migration lock. A hash collision only makes two grants wait for each
// other for the length of a statement.
const grantLockSpace int32 = 0x67726e74

// Issuing takes the grant's lock shared and checks for a revocation after it
// has the lock; RevokeGrant takes it exclusive, records the revocation and
// deletes the grant's tokens. So a revocation that committed before an issue
// took its lock refuses it, and tokens an issue committed before the
// revocation took its lock are deleted by it: no interleaving leaves a token.
const (
	lockGrantShared    = "SELECT pg_advisory_xact_lock_shared($1::int4, hashtext($2))"
	lockGrantExclusive = "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))"
	notRevoked         = "NOT EXISTS (SELECT FROM grant_revocations WHERE grant_id = $7::text AND until >= $8::timestamptz)"

	insertAccessSQL = `INSERT INTO access_tokens (id, grant_id, client_id, subject, expiry, data)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::timestamptz, $6::jsonb WHERE ` + notRevoked
	insertRefreshSQL = `INSERT INTO refresh_tokens (id, grant_id, client_id, subject, expiry, data)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::timestamptz, $6::jsonb WHERE ` + notRevoked
)

// IssueTokens stores the tokens of one token response. Without a rotation it is
// one batch (one round trip, one commit). A rotation runs in a transaction that
// locks the rotated token's row, and its successor's, before deciding.
func (s *Storage) IssueTokens(ctx context.Context, access storage.AccessToken, refresh *storage.RefreshToken, rotate storage.Rotation) error {
	now := time.Now()
	accessData, err := encode(access)
	if err != nil {
		return wrap("issue tokens", err)
	}
	var refreshData []byte
	if refresh != nil {
		r := *refresh
		r.RotatedAt, r.Successor = time.Time{}, "" // columns, see GetRefreshToken
		if refreshData, err = encode(r); err != nil {
			return wrap("issue tokens", err)
		}
	}
	queueInserts := func(b *pgx.Batch) {
		b.Queue(insertAccessSQL, access.ID, access.GrantID, access.ClientID, access.Subject, access.Expiry, accessData,
			access.GrantID, now)
		if refresh != nil {
			b.Queue(insertRefreshSQL, refresh.ID, refresh.GrantID, refresh.ClientID, refresh.Subject, refresh.Expiry, refreshData,
				access.GrantID, now)
		}
	}
	err = retry(ctx, func() error {
		if rotate.ID == "" {
			b := &pgx.Batch{}
			b.Queue(lockGrantShared, grantLockSpace, access.GrantID)
			queueInserts(b)
			return s.sendInserts(ctx, b, 1)
		}
		return s.rotate(ctx, now, access.GrantID, refresh, rotate, queueInserts)
	})
	return wrap("issue tokens", err)
}

// sendInserts sends b, whose statements from first on are the token inserts,
// and maps their outcome: a taken ID fails the batch (storage.ErrAlreadyExists);
// an access token that was not inserted met a revocation (storage.ErrRevoked).
func (s *Storage) sendInserts(ctx context.Context, b *pgx.Batch, first int) error {
	var inserted int64 = -1
	reads := make([]func(pgx.BatchResults) error, first+1)
	reads[first] = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		inserted = tag.RowsAffected()
		return err
	}
	err := s.sendBatch(ctx, b, reads...)
	switch {
	case isUniqueViolation(err):
		return storage.ErrAlreadyExists
	case err != nil:
		return err
	case inserted == 0:
		return storage.ErrRevoked
	}
	return nil
}

// rotate issues the tokens that replace the refresh token rotate.ID:
//
//   - a live token not rotated yet is marked rotated, its successor recorded;
//   - a rotated one within rotate.Grace of its rotation whose successor is live
//     and not itself rotated (the client retried and lost the answer) has that
//     successor deleted and the new token recorded instead, so the chain keeps
//     one live refresh token;
//   - any other rotated one is storage.ErrAlreadyUsed; a missing or expired one
//     storage.ErrNotFound; either way nothing is stored.
func (s *Storage) rotate(ctx context.Context, now time.Time, grantID string, refresh *storage.RefreshToken, rotate storage.Rotation, queueInserts func(*pgx.Batch)) error {
	var (
		revoked            bool
		expiry             time.Time
		rotatedAt          *time.Time
		successor          string
		successorFound     bool
		successorRotatedAt *time.Time
	)
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(lockGrantShared, grantLockSpace, grantID)
	b.Queue("SELECT EXISTS (SELECT FROM grant_revocations WHERE grant_id = $1 AND until >= $2)", grantID, now)
	b.Queue("SELECT expiry, rotated_at, successor FROM refresh_tokens WHERE id = $1 FOR UPDATE", rotate.ID)
	// This statement starts after the one above holds the row, so the
	// successor it finds is the one the decision below is about.
	b.Queue(`SELECT s.rotated_at FROM refresh_tokens r JOIN refresh_tokens s ON s.id = r.successor
		WHERE r.id = $1 FOR UPDATE OF s`, rotate.ID)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	err := func() error {
		if _, err := br.Exec(); err != nil { // BEGIN
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		if err := br.QueryRow().Scan(&revoked); err != nil {
			return err
		}
		if err := br.QueryRow().Scan(&expiry, &rotatedAt, &successor); err != nil {
			return notFound(err)
		}
		err := br.QueryRow().Scan(&successorRotatedAt)
		successorFound = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
		return err
	}()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	switch {
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	case revoked:
		return storage.ErrRevoked
	case errors.Is(err, storage.ErrNotFound) || expiry.Before(now):
		return fmt.Errorf("refresh token to rotate: %w", storage.ErrNotFound)
	}

	replaceSuccessor := false
	if rotatedAt != nil {
		withinGrace := rotate.Grace > 0 && now.Sub(*rotatedAt) <= rotate.Grace
		successorLive := successor == "" || (successorFound && successorRotatedAt == nil)
		if !withinGrace || !successorLive {
			return fmt.Errorf("refresh token to rotate: %w", storage.ErrAlreadyUsed)
		}
		replaceSuccessor = successor != ""
	}

	newSuccessor := ""
	if refresh != nil {
		newSuccessor = refresh.ID
	}
	wb := &pgx.Batch{}
	wb.Queue("UPDATE refresh_tokens SET rotated_at = coalesce(rotated_at, $2), successor = $3 WHERE id = $1",
		rotate.ID, now, newSuccessor)
	first := 1
	if replaceSuccessor {
		wb.Queue("DELETE FROM refresh_tokens WHERE id = $1", successor)
		first++
	}
	queueInserts(wb)
	var inserted int64 = -1
	reads := make([]func(pgx.BatchResults) error, first+1)
	reads[first] = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		inserted = tag.RowsAffected()
		return err
	}
	err = sendBatchOn(ctx, tx, wb, reads...)
	switch {
	case isUniqueViolation(err):
		return storage.ErrAlreadyExists
	case err != nil:
		return err
	case inserted == 0: // cannot happen: the revocation was checked under the lock
		return storage.ErrRevoked
	}
	return tx.Commit(ctx)
}

func (s *Storage) GetAccessToken(ctx context.Context, id string) (storage.AccessToken, error) {
	var data []byte
	var t storage.AccessToken
	err := notFound(s.pool.QueryRow(ctx, "SELECT data FROM access_tokens WHERE id = $1 AND expiry >= $2",
		id, time.Now()).Scan(&data))
	if err == nil {
		err = decode(data, &t)
	}
	if err != nil {
		return storage.AccessToken{}, wrap("get access token", err)
	}
	return t, nil
}

// GetRefreshToken returns rotated tokens too; RotatedAt and Successor come
// from their columns.
func (s *Storage) GetRefreshToken(ctx context.Context, id string) (storage.RefreshToken, error) {
	var data []byte
	var rotatedAt *time.Time
	var successor string
	var t storage.RefreshToken
	err := notFound(s.pool.QueryRow(ctx, "SELECT data, rotated_at, successor FROM refresh_tokens WHERE id = $1 AND expiry >= $2",
		id, time.Now()).Scan(&data, &rotatedAt, &successor))
	if err == nil {
		err = decode(data, &t)
	}
	if err != nil {
		return storage.RefreshToken{}, wrap("get refresh token", err)
	}
	if rotatedAt != nil {
		t.RotatedAt = *rotatedAt
	}
	t.Successor = successor
	return t, nil
}

func (s *Storage) DeleteAccessToken(ctx context.Context, id string) error {
	return wrap("delete access token", s.deleteByID(ctx, "DELETE FROM access_tokens WHERE id = $1", id))
}

func (s *Storage) DeleteRefreshToken(ctx context.Context, id string) error {
	return wrap("delete refresh token", s.deleteByID(ctx, "DELETE FROM refresh_tokens WHERE id = $1", id))
}

func (s *Storage) deleteByID(ctx context.Context, sql, id string) error {
	tag, err := s.pool.Exec(ctx, sql, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = storage.ErrNotFound
	}
	return err
}

// RevokeGrant deletes the grant's tokens and records it as revoked until until.
func (s *Storage) RevokeGrant(ctx context.Context, grantID string, until time.Time) error {
	err := retry(ctx, func() error {
		b := &pgx.Batch{}
		b.Queue(lockGrantExclusive, grantLockSpace, grantID)
		if !until.IsZero() {
			b.Queue(`INSERT INTO grant_revocations (grant_id, until) VALUES ($1, $2)
				ON CONFLICT (grant_id) DO UPDATE SET until = greatest(grant_revocations.until, EXCLUDED.until)`, grantID, until)
		}
		b.Queue("DELETE FROM access_tokens WHERE grant_id = $1", grantID)
		b.Queue("DELETE FROM refresh_tokens WHERE grant_id = $1", grantID)
		return s.sendBatch(ctx, b)
	})
	return wrap("revoke grant", err)
}

// RevokeSubject deletes the person's tokens and sessions, in one transaction.
func (s *Storage) RevokeSubject(ctx context.Context, subject string) error {
	err := retry(ctx, func() error {
		b := &pgx.Batch{}
		for _, table := range []string{"access_tokens", "refresh_tokens", "sessions"} {
			b.Queue("DELETE FROM "+table+" WHERE subject = $1", subject)
		}
		return s.sendBatch(ctx, b)
	})
	return wrap("revoke subject", err)
}

// RevokeClient deletes everything issued to the client, in one transaction.
func (s *Storage) RevokeClient(ctx context.Context, clientID string) error {
	var devices, requests int64
	err := retry(ctx, func() error {
		b := &pgx.Batch{}
		for _, table := range []string{"access_tokens", "refresh_tokens", "auth_codes", "consents", "device_authorizations", "auth_requests"} {
			b.Queue("DELETE FROM "+table+" WHERE client_id = $1", clientID)
		}
		deleted := func(n *int64) func(pgx.BatchResults) error {
			return func(br pgx.BatchResults) error {
				tag, err := br.Exec()
				*n = tag.RowsAffected()
				return err
			}
		}
		return s.sendBatch(ctx, b, nil, nil, nil, nil, deleted(&devices), deleted(&requests))
	})
	if err == nil {
		s.devices.release(int(devices))
		s.authRequests.release(int(requests))
	}
	return wrap("revoke client", err)
}
