package postgres

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/dingbridge/dingbridge/storage"
)

// Users are keyed by subject. An upsert reads the user and its revision with
// its row locked, calls update, and stores the result with an INSERT … ON
// CONFLICT that updates only a row still at that revision (revision 0: there
// was none, so a row another first write inserted meanwhile is a conflict).

const upsertUserSQL = `INSERT INTO users (subject, data, keys) VALUES ($1, $3, $4)
	ON CONFLICT (subject) DO UPDATE SET data = EXCLUDED.data, keys = EXCLUDED.keys, rev = users.rev + 1
	WHERE users.rev = $2`

func (s *Storage) UpsertUser(ctx context.Context, subject string, update func(u storage.User, found bool) (storage.User, error)) (storage.User, error) {
	var stored storage.User
	err := s.writeUser(ctx, func(tx pgx.Tx) (bool, error) {
		u, data, rev, err := updatedUser(ctx, tx, subject, update)
		if err != nil {
			return false, err
		}
		tag, err := tx.Exec(ctx, upsertUserSQL, subject, rev, data, userKeys(u))
		stored = u
		return err == nil && tag.RowsAffected() == 1, err
	})
	if err != nil {
		return storage.User{}, wrap("upsert user", err)
	}
	return stored, nil
}

// errUserRaced: a first write of a user met another one's insert; writeUser
// rolls back and tries again on the row that insert made.
var errUserRaced = errors.New("user written concurrently")

// writeUser runs write in a transaction until it is done. write reads the
// user locking its row (SELECT … FOR UPDATE), so writers of one person wait
// for each other rather than retry; only two first writes of a person who has
// no row yet can collide (done=false), and then the loser runs again.
func (s *Storage) writeUser(ctx context.Context, write func(tx pgx.Tx) (bool, error)) error {
	return optimistic(ctx, func() (bool, error) {
		err := retry(ctx, func() error {
			return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				done, err := write(tx)
				if err == nil && !done {
					err = errUserRaced
				}
				return err
			})
		})
		if errors.Is(err, errUserRaced) {
			return false, nil
		}
		return err == nil, err
	})
}

// updatedUser reads the user, locking its row, and returns what update makes
// of it, encoded, with the revision it was read at (0 if there was none).
func updatedUser(ctx context.Context, tx pgx.Tx, subject string, update func(storage.User, bool) (storage.User, error)) (storage.User, []byte, int64, error) {
	var data []byte
	var rev int64
	err := tx.QueryRow(ctx, "SELECT data, rev FROM users WHERE subject = $1 FOR UPDATE", subject).Scan(&data, &rev)
	found := err == nil
	if err = notFound(err); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, nil, 0, err
	}
	var u storage.User
	if found {
		if err := decode(data, &u); err != nil {
			return storage.User{}, nil, 0, err
		}
	}
	u, err = update(u, found)
	if err != nil {
		return storage.User{}, nil, 0, err
	}
	if u.Subject == "" {
		u.Subject = subject
	}
	if u.Subject != subject {
		return storage.User{}, nil, 0, errors.New("update changed the subject")
	}
	if data, err = encode(u); err != nil {
		return storage.User{}, nil, 0, err
	}
	return u, data, rev, nil
}

// completeLoginSQL stores the user (at the revision read, as upsertUserSQL),
// and only if that happened deletes the replaced session and creates the new
// one: one statement, so one commit and all or nothing. A taken session ID
// fails the whole statement with a unique violation.
const completeLoginSQL = `WITH u AS (` + upsertUserSQL + ` RETURNING 1),
	replaced AS (DELETE FROM sessions WHERE id = $5::text AND $5::text <> '' AND EXISTS (SELECT FROM u)),
	created AS (INSERT INTO sessions (id, subject, expiry, data)
		SELECT $6::text, $7::text, $8::timestamptz, $9::jsonb WHERE $6::text <> '' AND EXISTS (SELECT FROM u))
	SELECT count(*) FROM u`

// CompleteLogin stores what an upstream login changed in one transaction: the
// user, the session it replaces (deleted) and the new session, committed
// without waiting for the WAL flush.
func (s *Storage) CompleteLogin(ctx context.Context, l storage.Login) (storage.User, error) {
	var sessionData []byte
	if l.Session.ID != "" {
		var err error
		if sessionData, err = encode(l.Session); err != nil {
			return storage.User{}, wrap("complete login", err)
		}
	} else {
		sessionData = []byte("null")
	}
	var stored storage.User
	err := s.writeUser(ctx, func(tx pgx.Tx) (bool, error) {
		// Visible to every replica at once, durable with the next synchronous
		// commit on the server (the login's IssueTokens) or the WAL writer's
		// next flush: a login is one WAL flush (storage's package comment).
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return false, err
		}
		u, data, rev, err := updatedUser(ctx, tx, l.Subject, l.Update)
		if err != nil {
			return false, err
		}
		var n int
		err = tx.QueryRow(ctx, completeLoginSQL, l.Subject, rev, data, userKeys(u), l.ReplaceSessionID,
			l.Session.ID, l.Session.Subject, l.Session.Expiry, sessionData).Scan(&n)
		if isUniqueViolation(err) {
			return false, storage.ErrAlreadyExists
		}
		stored = u
		return err == nil && n == 1, err
	})
	if err != nil {
		return storage.User{}, wrap("complete login", err)
	}
	return stored, nil
}

// userKeys encodes what a user is found by, one text per key: a kind letter,
// then the value; a staff id is "i", its corp's length, ":", the corp and the
// id, so that no two keys encode alike.
func userKeys(u storage.User) []string {
	keys := []string{}
	for _, k := range u.Keys() {
		keys = append(keys, userKey(k))
	}
	return keys
}

// userKey encodes a normalised key as userKeys does.
func userKey(k storage.UserKey) string {
	switch {
	case k.UnionID != "":
		return "u" + k.UnionID
	case k.UserID != "":
		return "i" + strconv.Itoa(len(k.CorpID)) + ":" + k.CorpID + k.UserID
	case k.Phone != "":
		return "p" + k.Phone
	case k.Email != "":
		return "e" + k.Email
	default:
		return "n" + k.Username
	}
}

// FindUsers reads the users whose keys hold key, by the GIN index on keys.
func (s *Storage) FindUsers(ctx context.Context, key storage.UserKey) ([]storage.User, error) {
	key, err := key.Normalize()
	if err != nil {
		return nil, wrap("find users", err)
	}
	rows, err := s.pool.Query(ctx, "SELECT data FROM users WHERE keys @> ARRAY[$1::text] ORDER BY subject", userKey(key))
	if err != nil {
		return nil, wrap("find users", err)
	}
	defer rows.Close()
	out := []storage.User{}
	for rows.Next() {
		var data []byte
		var u storage.User
		if err := rows.Scan(&data); err != nil {
			return nil, wrap("find users", err)
		}
		if err := decode(data, &u); err != nil {
			return nil, wrap("find users", err)
		}
		out = append(out, u)
	}
	return out, wrap("find users", rows.Err())
}

func (s *Storage) GetUser(ctx context.Context, subject string) (storage.User, error) {
	var data []byte
	var u storage.User
	err := notFound(s.pool.QueryRow(ctx, "SELECT data FROM users WHERE subject = $1", subject).Scan(&data))
	if err == nil {
		err = decode(data, &u)
	}
	if err != nil {
		return storage.User{}, wrap("get user", err)
	}
	return u, nil
}

func (s *Storage) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.pool.Query(ctx, "SELECT data FROM users ORDER BY subject")
	if err != nil {
		return nil, wrap("list users", err)
	}
	defer rows.Close()
	var out []storage.User
	for rows.Next() {
		var data []byte
		var u storage.User
		if err := rows.Scan(&data); err != nil {
			return nil, wrap("list users", err)
		}
		if err := decode(data, &u); err != nil {
			return nil, wrap("list users", err)
		}
		out = append(out, u)
	}
	return out, wrap("list users", rows.Err())
}
