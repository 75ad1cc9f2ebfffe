package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// gcChunk bounds the rows one DELETE of GarbageCollect removes, so a large
// backlog never holds locks (or one transaction's WAL) long enough to matter.
const gcChunk = 1000

// GarbageCollect deletes, by each table's expiry index, every record whose
// Expiry is before now, and the grant revocations whose time is up. Several
// replicas sweeping at once would only find less to do, but op runs the sweep
// under a lease anyway.
func (s *Storage) GarbageCollect(ctx context.Context, now time.Time) (storage.GCResult, error) {
	var r storage.GCResult
	steps := []struct {
		table, column string
		count         *int
	}{
		{"auth_requests", "expiry", &r.AuthRequests},
		{"auth_codes", "expiry", &r.AuthCodes},
		{"access_tokens", "expiry", &r.AccessTokens},
		{"refresh_tokens", "expiry", &r.RefreshTokens},
		{"upstream_states", "expiry", &r.UpstreamStates},
		{"sessions", "expiry", &r.Sessions},
		{"device_authorizations", "expiry", &r.Devices},
		{"grant_revocations", "until", nil},
	}
	for _, st := range steps {
		key := "id"
		if st.table == "grant_revocations" {
			key = "grant_id"
		}
		sql := fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s < $1 LIMIT %[4]d)",
			st.table, key, st.column, gcChunk)
		for {
			tag, err := s.pool.Exec(ctx, sql, now)
			if err != nil {
				return r, wrap("garbage collect "+st.table, err)
			}
			if st.count != nil {
				*st.count += int(tag.RowsAffected())
			}
			if tag.RowsAffected() < gcChunk {
				break
			}
		}
	}
	s.authRequests.release(r.AuthRequests)
	s.upstreamStates.release(r.UpstreamStates)
	s.devices.release(r.Devices)
	return r, nil
}

// Count returns the live records of each kind in one statement. Counting reads
// the expiry indexes and primary keys, never a record's JSON.
func (s *Storage) Count(ctx context.Context) (storage.RecordCounts, error) {
	var c storage.RecordCounts
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM auth_requests WHERE expiry >= $1),
		(SELECT count(*) FROM auth_codes WHERE expiry >= $1),
		(SELECT count(*) FROM access_tokens WHERE expiry >= $1),
		(SELECT count(*) FROM refresh_tokens WHERE expiry >= $1 AND rotated_at IS NULL),
		(SELECT count(*) FROM sessions WHERE expiry >= $1),
		(SELECT count(*) FROM users),
		(SELECT count(*) FROM clients),
		(SELECT count(*) FROM upstream_states WHERE expiry >= $1),
		(SELECT count(*) FROM device_authorizations WHERE expiry >= $1),
		(SELECT count(*) FROM consents)`, time.Now()).Scan(
		&c.AuthRequests, &c.AuthCodes, &c.AccessTokens, &c.RefreshTokens, &c.Sessions,
		&c.Users, &c.Clients, &c.UpstreamStates, &c.Devices, &c.Consents)
	if err != nil {
		return storage.RecordCounts{}, wrap("count records", err)
	}
	return c, nil
}
