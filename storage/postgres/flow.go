package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dingbridge/dingbridge/storage"
)

// Login flow state: auth requests, codes, upstream states and device
// authorizations, in UNLOGGED tables. Sessions share the code of auth requests
// but live in an ordinary table: they are durable.
//
// "Now" is this process's clock, as in every backend: a record is live while
// its Expiry is not before now.

// recordTable is a table of records with an ID, an owner column (the client or
// the subject, for revocation) and an expiry, changed by read-modify-write.
type recordTable[T any] struct {
	what    string // for errors: "auth request"
	table   string
	owner   string // the owner column
	id      func(T) string
	ownerOf func(T) string
	expiry  func(T) time.Time
	// lazyUpdates: an update returns without waiting for the WAL flush, durable
	// with the next synchronous commit on the server (storage's package
	// comment: a session used again for an SSO login, whose token response
	// commits synchronously after it).
	lazyUpdates bool
}

var (
	authRequests = recordTable[storage.AuthRequest]{
		what: "auth request", table: "auth_requests", owner: "client_id",
		id:      func(a storage.AuthRequest) string { return a.ID },
		ownerOf: func(a storage.AuthRequest) string { return a.ClientID },
		expiry:  func(a storage.AuthRequest) time.Time { return a.Expiry },
	}
	sessions = recordTable[storage.Session]{
		what: "session", table: "sessions", owner: "subject",
		id:          func(s storage.Session) string { return s.ID },
		ownerOf:     func(s storage.Session) string { return s.Subject },
		expiry:      func(s storage.Session) time.Time { return s.Expiry },
		lazyUpdates: true,
	}
)

func (k recordTable[T]) create(ctx context.Context, s *Storage, rec T) error {
	err := insertOnce(ctx, s, fmt.Sprintf(
		"INSERT INTO %s (id, %s, expiry, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", k.table, k.owner),
		rec, k.id(rec), k.ownerOf(rec), k.expiry(rec))
	return wrap("create "+k.what, err)
}

func (k recordTable[T]) get(ctx context.Context, s *Storage, id string) (T, error) {
	var rec, zero T
	var data []byte
	err := notFound(s.pool.QueryRow(ctx, fmt.Sprintf(
		"SELECT data FROM %s WHERE id = $1 AND expiry >= $2", k.table), id, time.Now()).Scan(&data))
	if err == nil {
		err = decode(data, &rec)
	}
	if err != nil {
		return zero, wrap("get "+k.what, err)
	}
	return rec, nil
}

// update stores what fn returns; an expired record is storage.ErrNotFound, so
// nothing (a login, a session touch) can complete after it.
func (k recordTable[T]) update(ctx context.Context, s *Storage, id string, fn func(T) (T, error)) error {
	read := fmt.Sprintf("SELECT data, rev FROM %s WHERE id = $1 AND expiry >= $2", k.table)
	write := fmt.Sprintf("UPDATE %s SET data = $3, %s = $4, expiry = $5, rev = rev + 1 WHERE id = $1 AND rev = $2", k.table, k.owner)
	err := optimistic(ctx, func() (bool, error) {
		var data []byte
		var rev int64
		if err := s.pool.QueryRow(ctx, read, id, time.Now()).Scan(&data, &rev); err != nil {
			return false, notFound(err)
		}
		var rec T
		if err := decode(data, &rec); err != nil {
			return false, err
		}
		rec, err := fn(rec)
		if err != nil {
			return false, err
		}
		if k.id(rec) != id {
			return false, errIDChanged
		}
		if data, err = encode(rec); err != nil {
			return false, err
		}
		if !k.lazyUpdates {
			tag, err := s.pool.Exec(ctx, write, id, rev, data, k.ownerOf(rec), k.expiry(rec))
			return err == nil && tag.RowsAffected() == 1, err
		}
		// One round trip: a batch is one implicit transaction, so SET LOCAL
		// holds for the UPDATE's commit.
		b := &pgx.Batch{}
		b.Queue("SET LOCAL synchronous_commit = off")
		written := b.Queue(write, id, rev, data, k.ownerOf(rec), k.expiry(rec))
		var rows int64
		written.Exec(func(tag pgconn.CommandTag) error { rows = tag.RowsAffected(); return nil })
		err = s.pool.SendBatch(ctx, b).Close()
		return err == nil && rows == 1, err
	})
	return wrap("update "+k.what, err)
}

func (k recordTable[T]) delete(ctx context.Context, s *Storage, id string) error {
	tag, err := s.pool.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE id = $1", k.table), id)
	if err == nil && tag.RowsAffected() == 0 {
		err = storage.ErrNotFound
	}
	return wrap("delete "+k.what, err)
}

// --- auth requests ---

func (s *Storage) CreateAuthRequest(ctx context.Context, a storage.AuthRequest) error {
	if err := s.authRequests.reserve(ctx, s.pool, time.Now(), a.Expiry); err != nil {
		return wrap("create auth request", err)
	}
	return authRequests.create(ctx, s, a)
}

func (s *Storage) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	return authRequests.get(ctx, s, id)
}

func (s *Storage) UpdateAuthRequest(ctx context.Context, id string, update func(storage.AuthRequest) (storage.AuthRequest, error)) error {
	return authRequests.update(ctx, s, id, update)
}

func (s *Storage) DeleteAuthRequest(ctx context.Context, id string) error {
	err := authRequests.delete(ctx, s, id)
	if err == nil {
		s.authRequests.release(1)
	}
	return err
}

// --- sessions ---

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

// SessionsOf reads the person's live sessions by the subject index.
func (s *Storage) SessionsOf(ctx context.Context, subject string) ([]storage.Session, error) {
	rows, err := s.pool.Query(ctx, "SELECT data FROM sessions WHERE subject = $1 AND expiry >= $2", subject, time.Now())
	if err != nil {
		return nil, wrap("sessions of a subject", err)
	}
	defer rows.Close()
	var out []storage.Session
	for rows.Next() {
		var data []byte
		var sess storage.Session
		if err := rows.Scan(&data); err != nil {
			return nil, wrap("sessions of a subject", err)
		}
		if err := decode(data, &sess); err != nil {
			return nil, wrap("sessions of a subject", err)
		}
		out = append(out, sess)
	}
	return out, wrap("sessions of a subject", rows.Err())
}

// --- auth codes ---

func (s *Storage) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	err := insertOnce(ctx, s, "INSERT INTO auth_codes (id, client_id, expiry, claimed_at, data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
		c, c.ID, c.ClientID, c.Expiry, nullTime(c.ClaimedAt))
	return wrap("create auth code", err)
}

func (s *Storage) GetAuthCode(ctx context.Context, id string) (storage.AuthCode, error) {
	c, _, err := s.scanCode(ctx, "SELECT data, claimed_at, claims FROM auth_codes WHERE id = $1 AND expiry >= $2", id, time.Now())
	if err != nil {
		return storage.AuthCode{}, wrap("get auth code", err)
	}
	return c, nil
}

// ClaimAuthCode is one UPDATE: PostgreSQL makes concurrent claims of the row
// wait for each other, the first keeps its claimed_at (coalesce), and claims
// counts them, so exactly one sees 1 and every other sees the winner's claim.
func (s *Storage) ClaimAuthCode(ctx context.Context, id string) (storage.AuthCode, error) {
	now := time.Now()
	c, claims, err := s.scanCode(ctx, `UPDATE auth_codes SET claimed_at = coalesce(claimed_at, $2), claims = claims + 1
		WHERE id = $1 AND expiry >= $2 RETURNING data, claimed_at, claims`, id, now)
	switch {
	case err != nil:
		return storage.AuthCode{}, wrap("claim auth code", err)
	case claims > 1:
		return c, wrap("claim auth code", storage.ErrAlreadyUsed)
	}
	return c, nil
}

func (s *Storage) scanCode(ctx context.Context, sql string, args ...any) (storage.AuthCode, int, error) {
	var data []byte
	var claimedAt *time.Time
	var claims int
	if err := s.pool.QueryRow(ctx, sql, args...).Scan(&data, &claimedAt, &claims); err != nil {
		return storage.AuthCode{}, 0, notFound(err)
	}
	var c storage.AuthCode
	if err := decode(data, &c); err != nil {
		return storage.AuthCode{}, 0, err
	}
	if claimedAt != nil {
		c.ClaimedAt = *claimedAt
	}
	return c, claims, nil
}

// nullTime stores a zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// --- upstream states ---

func (s *Storage) CreateUpstreamState(ctx context.Context, st storage.UpstreamState) error {
	err := s.upstreamStates.reserve(ctx, s.pool, time.Now(), st.Expiry)
	if err == nil {
		err = insertOnce(ctx, s, "INSERT INTO upstream_states (id, expiry, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
			st, st.ID, st.Expiry)
	}
	return wrap("create upstream state", err)
}

// ConsumeUpstreamState is one DELETE … RETURNING: of concurrent consumers,
// only the one whose DELETE removed the row gets it.
func (s *Storage) ConsumeUpstreamState(ctx context.Context, id string) (storage.UpstreamState, error) {
	var data []byte
	var st storage.UpstreamState
	err := notFound(s.pool.QueryRow(ctx, "DELETE FROM upstream_states WHERE id = $1 AND expiry >= $2 RETURNING data",
		id, time.Now()).Scan(&data))
	if err == nil {
		err = decode(data, &st)
	}
	if err != nil {
		return storage.UpstreamState{}, wrap("consume upstream state", err)
	}
	s.upstreamStates.release(1)
	return st, nil
}

// --- device authorizations ---

// CreateDeviceAuthorization: the table's unique user_code makes a taken user
// code a conflict like a taken ID.
func (s *Storage) CreateDeviceAuthorization(ctx context.Context, d storage.DeviceAuthorization) error {
	err := s.devices.reserve(ctx, s.pool, time.Now(), d.Expiry)
	if err == nil {
		err = insertOnce(ctx, s, "INSERT INTO device_authorizations (id, user_code, client_id, expiry, data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
			d, d.ID, d.UserCode, d.ClientID, d.Expiry)
	}
	return wrap("create device authorization", err)
}

func (s *Storage) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (storage.DeviceAuthorization, error) {
	var data []byte
	var d storage.DeviceAuthorization
	err := notFound(s.pool.QueryRow(ctx, "SELECT data FROM device_authorizations WHERE user_code = $1 AND expiry >= $2",
		userCode, time.Now()).Scan(&data))
	if err == nil {
		err = decode(data, &d)
	}
	if err != nil {
		return storage.DeviceAuthorization{}, wrap("get device authorization", err)
	}
	return d, nil
}

func (s *Storage) UpdateDeviceAuthorization(ctx context.Context, id string, update func(storage.DeviceAuthorization) (storage.DeviceAuthorization, error)) (storage.DeviceAuthorization, error) {
	var stored storage.DeviceAuthorization
	err := optimistic(ctx, func() (bool, error) {
		var data []byte
		var rev int64
		if err := s.pool.QueryRow(ctx, "SELECT data, rev FROM device_authorizations WHERE id = $1 AND expiry >= $2",
			id, time.Now()).Scan(&data, &rev); err != nil {
			return false, notFound(err)
		}
		var d storage.DeviceAuthorization
		if err := decode(data, &d); err != nil {
			return false, err
		}
		userCode := d.UserCode
		d, err := update(d)
		if err != nil {
			return false, err
		}
		if d.ID != id || d.UserCode != userCode {
			return false, errors.New("update changed the ID or user code")
		}
		if data, err = encode(d); err != nil {
			return false, err
		}
		tag, err := s.pool.Exec(ctx, "UPDATE device_authorizations SET data = $3, expiry = $4, rev = rev + 1 WHERE id = $1 AND rev = $2",
			id, rev, data, d.Expiry)
		stored = d
		return err == nil && tag.RowsAffected() == 1, err
	})
	if err != nil {
		return storage.DeviceAuthorization{}, wrap("update device authorization", err)
	}
	return stored, nil
}

// --- consents (durable) ---

func (s *Storage) GetConsent(ctx context.Context, subject, clientID string) (storage.Consent, error) {
	var data []byte
	var c storage.Consent
	err := notFound(s.pool.QueryRow(ctx, "SELECT data FROM consents WHERE subject = $1 AND client_id = $2",
		subject, clientID).Scan(&data))
	if err == nil {
		err = decode(data, &c)
	}
	if err != nil {
		return storage.Consent{}, wrap("get consent", err)
	}
	return c, nil
}

func (s *Storage) PutConsent(ctx context.Context, c storage.Consent) error {
	data, err := encode(c)
	if err == nil {
		_, err = s.pool.Exec(ctx, `INSERT INTO consents (subject, client_id, data) VALUES ($1, $2, $3)
			ON CONFLICT (subject, client_id) DO UPDATE SET data = EXCLUDED.data`, c.Subject, c.ClientID, data)
	}
	return wrap("put consent", err)
}
