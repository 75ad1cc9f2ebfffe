package bolt

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// Device authorizations live under the device code's hash; device_user_codes maps
// each user code to that ID. Both change in one transaction. Errors name no code.

func (s *Storage) CreateDeviceAuthorization(ctx context.Context, d storage.DeviceAuthorization) error {
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b, idx := tx.Bucket([]byte(bucketDevices)), tx.Bucket([]byte(bucketUserCodes))
		if has(b, d.ID) || has(idx, d.UserCode) {
			answer = storage.ErrAlreadyExists
			return nil
		}
		if err := idx.Put([]byte(d.UserCode), []byte(d.ID)); err != nil {
			return err
		}
		return put(b, d.ID, utcDevice(d))
	})
	return wrap("create device authorization", err, answer)
}

func (s *Storage) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (storage.DeviceAuthorization, error) {
	now := time.Now()
	var d storage.DeviceAuthorization
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		id := tx.Bucket([]byte(bucketUserCodes)).Get([]byte(userCode))
		if id == nil {
			return storage.ErrNotFound
		}
		ok, err := get(tx.Bucket([]byte(bucketDevices)), string(id), &d)
		if err == nil && (!ok || expired(d.Expiry, now)) {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.DeviceAuthorization{}, wrap("get device authorization", err, nil)
	}
	return d, nil
}

func (s *Storage) UpdateDeviceAuthorization(ctx context.Context, id string, update func(storage.DeviceAuthorization) (storage.DeviceAuthorization, error)) (storage.DeviceAuthorization, error) {
	now := time.Now()
	var stored storage.DeviceAuthorization
	var answer error
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		answer = nil
		b := tx.Bucket([]byte(bucketDevices))
		var d storage.DeviceAuthorization
		ok, err := get(b, id, &d)
		if err != nil {
			return err
		}
		if !ok || expired(d.Expiry, now) {
			answer = storage.ErrNotFound
			return nil
		}
		userCode := d.UserCode
		if d, answer = update(d); answer != nil {
			return nil
		}
		// The user code is the index key; an update may not move it.
		if d.ID != id || d.UserCode != userCode {
			answer = errors.New("update changed the ID or user code")
			return nil
		}
		stored = utcDevice(d)
		return put(b, id, stored)
	})
	if err = wrap("update device authorization", err, answer); err != nil {
		return storage.DeviceAuthorization{}, err
	}
	return stored, nil
}

// deleteUserCode removes an index entry if it still points at id (a later flow
// may have drawn the same code after this one expired).
func deleteUserCode(tx *bbolt.Tx, userCode, id string) error {
	idx := tx.Bucket([]byte(bucketUserCodes))
	if string(idx.Get([]byte(userCode))) != id {
		return nil
	}
	return idx.Delete([]byte(userCode))
}

func deleteDevicesWhere(tx *bbolt.Tx, match func(owner) bool) error {
	b := tx.Bucket([]byte(bucketDevices))
	keys, err := matching(b, match)
	if err != nil {
		return err
	}
	for _, k := range keys {
		var d storage.DeviceAuthorization
		if _, err := get(b, string(k), &d); err != nil {
			return err
		}
		if err := deleteUserCode(tx, d.UserCode, string(k)); err != nil {
			return err
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Consents are keyed by subject and client; NUL cannot occur in either.

func consentKey(subject, clientID string) string { return subject + "\x00" + clientID }

func (s *Storage) GetConsent(ctx context.Context, subject, clientID string) (storage.Consent, error) {
	var c storage.Consent
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket([]byte(bucketConsents)), consentKey(subject, clientID), &c)
		if err == nil && !ok {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return storage.Consent{}, wrap("get consent", err, nil)
	}
	return c, nil
}

func (s *Storage) PutConsent(ctx context.Context, c storage.Consent) error {
	c.GrantedAt = utc(c.GrantedAt)
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		return put(tx.Bucket([]byte(bucketConsents)), consentKey(c.Subject, c.ClientID), c)
	})
	return wrap("put consent", err, nil)
}
