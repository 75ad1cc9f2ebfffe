package bolt

import (
	"context"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

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
