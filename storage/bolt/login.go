package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// Auth requests, codes and upstream states are written on every login, so every
// write here goes through s.batch (see its comment for the rules its functions keep).
//
// Error messages name no auth request, code or state: their IDs are, or lead to,
// secrets, and errors end up in logs.

func (s *Storage) CreateAuthRequest(ctx context.Context, a storage.AuthRequest) error {
	return authRequests.create(ctx, s, a)
}

func (s *Storage) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	return authRequests.get(ctx, s, id)
}

// UpdateAuthRequest: an expired request is storage.ErrNotFound here too, so a
// login cannot complete after it.
func (s *Storage) UpdateAuthRequest(ctx context.Context, id string, update func(storage.AuthRequest) (storage.AuthRequest, error)) error {
	return authRequests.update(ctx, s, id, update)
}

func (s *Storage) DeleteAuthRequest(ctx context.Context, id string) error {
	return authRequests.delete(ctx, s, id)
}

// CreateAuthCode stores c, or fails with storage.ErrAlreadyExists.
func (s *Storage) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(bucketCodes))
		if has(b, c.ID) {
			answer = storage.ErrAlreadyExists
			return nil
		}
		return put(b, c.ID, utcAuthCode(c))
	})
	return wrap("create auth code", err, answer)
}

// GetAuthCode returns the code without claiming it.
func (s *Storage) GetAuthCode(ctx context.Context, id string) (storage.AuthCode, error) {
	now := time.Now()
	var code storage.AuthCode
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket([]byte(bucketCodes)), id, &code)
		if err == nil && (!ok || expired(code.Expiry, now)) {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.AuthCode{}, fmt.Errorf("bolt: get auth code: %w", err)
	}
	return code, nil
}

// ClaimAuthCode marks the code claimed and returns it. A claimed code stays stored
// until it expires, so a second claim can be told apart from a bad code: it gets the
// record with storage.ErrAlreadyUsed.
func (s *Storage) ClaimAuthCode(ctx context.Context, id string) (storage.AuthCode, error) {
	now := time.Now()
	var code storage.AuthCode
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		code, answer = storage.AuthCode{}, nil
		b := tx.Bucket([]byte(bucketCodes))
		ok, err := get(b, id, &code)
		if err != nil {
			return err
		}
		if !ok || expired(code.Expiry, now) {
			code, answer = storage.AuthCode{}, storage.ErrNotFound
			return nil
		}
		if !code.ClaimedAt.IsZero() {
			answer = storage.ErrAlreadyUsed
			return nil
		}
		code.ClaimedAt = now.UTC()
		return put(b, id, code)
	})
	if err == nil && answer == storage.ErrAlreadyUsed {
		return code, wrap("claim auth code", nil, answer)
	}
	if err := wrap("claim auth code", err, answer); err != nil {
		return storage.AuthCode{}, err
	}
	return code, nil
}

// CreateUpstreamState stores st, or fails with storage.ErrAlreadyExists.
func (s *Storage) CreateUpstreamState(ctx context.Context, st storage.UpstreamState) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(bucketUpstreamStates))
		if has(b, st.ID) {
			answer = storage.ErrAlreadyExists
			return nil
		}
		return put(b, st.ID, utcUpstreamState(st))
	})
	return wrap("create upstream state", err, answer)
}

// ConsumeUpstreamState deletes the state and returns it, once. An expired state is
// storage.ErrNotFound and is left for GarbageCollect.
func (s *Storage) ConsumeUpstreamState(ctx context.Context, id string) (storage.UpstreamState, error) {
	now := time.Now()
	var st storage.UpstreamState
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		st, answer = storage.UpstreamState{}, nil
		b := tx.Bucket([]byte(bucketUpstreamStates))
		ok, err := get(b, id, &st)
		if err != nil {
			return err
		}
		if !ok || expired(st.Expiry, now) {
			st, answer = storage.UpstreamState{}, storage.ErrNotFound
			return nil
		}
		return b.Delete([]byte(id))
	})
	if err := wrap("consume upstream state", err, answer); err != nil {
		return storage.UpstreamState{}, err
	}
	return st, nil
}

// wrap gives a batched call's outcome its context: err from the transaction, or
// else the answer the transaction decided on.
func wrap(op string, err, answer error) error {
	if err == nil {
		err = answer
	}
	if err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	return nil
}
