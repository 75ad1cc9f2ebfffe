package storagetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

func device(id, userCode string, expiry time.Time) storage.DeviceAuthorization {
	return storage.DeviceAuthorization{
		ID: id, UserCode: userCode, ClientID: "cli", Scopes: []string{"openid", "offline_access"},
		State: storage.DevicePending, CreatedAt: now(), CodeExpiry: expiry.Add(-time.Minute), Expiry: expiry,
		PollInterval: 5 * time.Second,
	}
}

func deviceTests() []test {
	return []test{
		{"create then find by user code returns every field", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			want := device("d1", "BCDFGHJK", live())
			want.LastPoll, want.Subject, want.AuthTime = now(), "union-123", now()
			want.AMR, want.ConnectorID, want.SessionID = []string{"dingtalk"}, "dingtalk", "sess-1"
			must(t, s.CreateDeviceAuthorization(ctx, want))
			got, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
			must(t, err)
			equal(t, "device authorization", got, want)
		}},
		{"a taken device code or user code is ErrAlreadyExists", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateDeviceAuthorization(ctx, device("d1", "BCDFGHJK", live())))
			wantErr(t, s.CreateDeviceAuthorization(ctx, device("d1", "LMNPQRST", live())), storage.ErrAlreadyExists)
			wantErr(t, s.CreateDeviceAuthorization(ctx, device("d2", "BCDFGHJK", live())), storage.ErrAlreadyExists)
			_, err := s.GetDeviceAuthorizationByUserCode(ctx, "LMNPQRST")
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"unknown and expired user codes are ErrNotFound", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateDeviceAuthorization(ctx, device("d1", "BCDFGHJK", past())))
			_, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.GetDeviceAuthorizationByUserCode(ctx, "ZZZZZZZZ")
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.UpdateDeviceAuthorization(ctx, "d1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) { return d, nil })
			wantErr(t, err, storage.ErrNotFound)
		}},
		{"update stores and returns what the callback returns", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateDeviceAuthorization(ctx, device("d1", "BCDFGHJK", live())))
			got, err := s.UpdateDeviceAuthorization(ctx, "d1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
				d.State, d.Subject = storage.DeviceApproved, "union-123"
				return d, nil
			})
			must(t, err)
			again, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
			must(t, err)
			equal(t, "stored", again, got)
			if got.State != storage.DeviceApproved || got.Subject != "union-123" {
				t.Errorf("after update: %+v", got)
			}
		}},
		{"update errors store nothing; changing the user code is refused", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateDeviceAuthorization(ctx, device("d1", "BCDFGHJK", live())))
			boom := errors.New("boom")
			_, err := s.UpdateDeviceAuthorization(ctx, "d1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
				d.State = storage.DeviceDenied
				return d, boom
			})
			wantErr(t, err, boom)
			_, err = s.UpdateDeviceAuthorization(ctx, "d1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
				d.UserCode = "LMNPQRST"
				return d, nil
			})
			if err == nil {
				t.Fatal("changing the user code was accepted")
			}
			got, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
			must(t, err)
			if got.State != storage.DevicePending {
				t.Errorf("State = %q after failed updates, want pending", got.State)
			}
		}},
		{"concurrent updates are serialised: one approval wins", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateDeviceAuthorization(ctx, device("d1", "BCDFGHJK", live())))
			errSpent := errors.New("spent")
			var wins atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					_, err := s.UpdateDeviceAuthorization(ctx, "d1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
						if d.State == storage.DeviceSpent {
							return d, errSpent
						}
						d.State = storage.DeviceSpent
						return d, nil
					})
					if err == nil {
						wins.Add(1)
					} else if !errors.Is(err, errSpent) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Errorf("%d updates spent the code, want 1", wins.Load())
			}
		}},
		{"garbage collection removes expired ones and frees their user codes", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateDeviceAuthorization(ctx, device("old", "BCDFGHJK", past())))
			must(t, s.CreateDeviceAuthorization(ctx, device("new", "LMNPQRST", live())))
			res, err := s.GarbageCollect(ctx, now())
			must(t, err)
			if res.Devices != 1 {
				t.Errorf("GCResult.Devices = %d, want 1", res.Devices)
			}
			must(t, s.CreateDeviceAuthorization(ctx, device("again", "BCDFGHJK", live())))
			got, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
			must(t, err)
			if got.ID != "again" {
				t.Errorf("user code leads to %q, want the new flow", got.ID)
			}
			if _, err := s.GetDeviceAuthorizationByUserCode(ctx, "LMNPQRST"); err != nil {
				t.Errorf("live flow: %v", err)
			}
		}},
		{"revoking a client removes its device authorizations and consents", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			must(t, s.CreateDeviceAuthorization(ctx, device("d1", "BCDFGHJK", live())))
			must(t, s.PutConsent(ctx, storage.Consent{Subject: "union-123", ClientID: "cli", Scopes: []string{"openid"}, GrantedAt: now()}))
			must(t, s.PutConsent(ctx, storage.Consent{Subject: "union-123", ClientID: "other", Scopes: []string{"openid"}, GrantedAt: now()}))
			must(t, s.RevokeClient(ctx, "cli"))
			_, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.GetConsent(ctx, "union-123", "cli")
			wantErr(t, err, storage.ErrNotFound)
			if _, err := s.GetConsent(ctx, "union-123", "other"); err != nil {
				t.Errorf("another client's consent: %v", err)
			}
			must(t, s.CreateDeviceAuthorization(ctx, device("d2", "BCDFGHJK", live())))
		}},
	}
}

func consentTests() []test {
	return []test{
		{"put then get returns every field; put replaces", func(t *testing.T, s storage.Storage) {
			ctx := t.Context()
			_, err := s.GetConsent(ctx, "union-123", "grafana")
			wantErr(t, err, storage.ErrNotFound)
			want := storage.Consent{Subject: "union-123", ClientID: "grafana", Scopes: []string{"openid", "profile"}, GrantedAt: now()}
			must(t, s.PutConsent(ctx, want))
			got, err := s.GetConsent(ctx, "union-123", "grafana")
			must(t, err)
			equal(t, "consent", got, want)
			want.Scopes = append(want.Scopes, "email")
			must(t, s.PutConsent(ctx, want))
			got, err = s.GetConsent(ctx, "union-123", "grafana")
			must(t, err)
			equal(t, "replaced consent", got, want)
			_, err = s.GetConsent(ctx, "union-123", "gitlab")
			wantErr(t, err, storage.ErrNotFound)
			_, err = s.GetConsent(ctx, "union-456", "grafana")
			wantErr(t, err, storage.ErrNotFound)
		}},
	}
}
