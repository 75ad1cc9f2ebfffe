// Package timed wraps a storage.Storage so that every call is timed: the
// latency of each operation is what tells an operator whether a slow login is
// DingTalk's or the database's.
package timed

import (
	"context"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// Observer is told how long each storage call took and how it ended.
type Observer interface {
	StorageOperation(operation string, took time.Duration, err error)
}

// Storage is a storage.Storage that reports every call but Close to an
// Observer, under the method's name. It holds no other state.
type Storage struct {
	next     storage.Storage
	observer Observer
}

var _ storage.Storage = (*Storage)(nil)

// New wraps next; the Observer sees each call after it returns.
func New(next storage.Storage, observer Observer) *Storage {
	return &Storage{next: next, observer: observer}
}

// Unwrap returns the wrapped storage.
func (t *Storage) Unwrap() storage.Storage { return t.next }

func (t *Storage) observe(operation string, start time.Time, err *error) {
	t.observer.StorageOperation(operation, time.Since(start), *err)
}

// Close closes the wrapped storage; it is not timed.
func (t *Storage) Close() error { return t.next.Close() }

// Every method below forwards to next under a deferred observe. The type has no
// embedded storage.Storage on purpose: a method added to the interface must be
// added here too, or this package stops compiling, rather than go untimed.

func (t *Storage) CreateClient(ctx context.Context, c storage.Client) (err error) {
	defer t.observe("CreateClient", time.Now(), &err)
	return t.next.CreateClient(ctx, c)
}

func (t *Storage) GetClient(ctx context.Context, id string) (_ storage.Client, err error) {
	defer t.observe("GetClient", time.Now(), &err)
	return t.next.GetClient(ctx, id)
}

func (t *Storage) ListClients(ctx context.Context) (_ []storage.Client, err error) {
	defer t.observe("ListClients", time.Now(), &err)
	return t.next.ListClients(ctx)
}

func (t *Storage) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (err error) {
	defer t.observe("UpdateClient", time.Now(), &err)
	return t.next.UpdateClient(ctx, id, update)
}

func (t *Storage) DeleteClient(ctx context.Context, id string) (err error) {
	defer t.observe("DeleteClient", time.Now(), &err)
	return t.next.DeleteClient(ctx, id)
}

func (t *Storage) CreateAuthRequest(ctx context.Context, a storage.AuthRequest) (err error) {
	defer t.observe("CreateAuthRequest", time.Now(), &err)
	return t.next.CreateAuthRequest(ctx, a)
}

func (t *Storage) GetAuthRequest(ctx context.Context, id string) (_ storage.AuthRequest, err error) {
	defer t.observe("GetAuthRequest", time.Now(), &err)
	return t.next.GetAuthRequest(ctx, id)
}

func (t *Storage) UpdateAuthRequest(ctx context.Context, id string, update func(storage.AuthRequest) (storage.AuthRequest, error)) (err error) {
	defer t.observe("UpdateAuthRequest", time.Now(), &err)
	return t.next.UpdateAuthRequest(ctx, id, update)
}

func (t *Storage) DeleteAuthRequest(ctx context.Context, id string) (err error) {
	defer t.observe("DeleteAuthRequest", time.Now(), &err)
	return t.next.DeleteAuthRequest(ctx, id)
}

func (t *Storage) CreateAuthCode(ctx context.Context, c storage.AuthCode) (err error) {
	defer t.observe("CreateAuthCode", time.Now(), &err)
	return t.next.CreateAuthCode(ctx, c)
}

func (t *Storage) GetAuthCode(ctx context.Context, id string) (_ storage.AuthCode, err error) {
	defer t.observe("GetAuthCode", time.Now(), &err)
	return t.next.GetAuthCode(ctx, id)
}

func (t *Storage) ClaimAuthCode(ctx context.Context, id string) (_ storage.AuthCode, err error) {
	defer t.observe("ClaimAuthCode", time.Now(), &err)
	return t.next.ClaimAuthCode(ctx, id)
}

func (t *Storage) IssueTokens(ctx context.Context, access storage.AccessToken, refresh *storage.RefreshToken, rotate storage.Rotation) (err error) {
	defer t.observe("IssueTokens", time.Now(), &err)
	return t.next.IssueTokens(ctx, access, refresh, rotate)
}

func (t *Storage) GetAccessToken(ctx context.Context, id string) (_ storage.AccessToken, err error) {
	defer t.observe("GetAccessToken", time.Now(), &err)
	return t.next.GetAccessToken(ctx, id)
}

func (t *Storage) GetRefreshToken(ctx context.Context, id string) (_ storage.RefreshToken, err error) {
	defer t.observe("GetRefreshToken", time.Now(), &err)
	return t.next.GetRefreshToken(ctx, id)
}

func (t *Storage) DeleteAccessToken(ctx context.Context, id string) (err error) {
	defer t.observe("DeleteAccessToken", time.Now(), &err)
	return t.next.DeleteAccessToken(ctx, id)
}

func (t *Storage) DeleteRefreshToken(ctx context.Context, id string) (err error) {
	defer t.observe("DeleteRefreshToken", time.Now(), &err)
	return t.next.DeleteRefreshToken(ctx, id)
}

func (t *Storage) RevokeGrant(ctx context.Context, grantID string, until time.Time) (err error) {
	defer t.observe("RevokeGrant", time.Now(), &err)
	return t.next.RevokeGrant(ctx, grantID, until)
}

func (t *Storage) RevokeSubject(ctx context.Context, subject string) (err error) {
	defer t.observe("RevokeSubject", time.Now(), &err)
	return t.next.RevokeSubject(ctx, subject)
}

func (t *Storage) RevokeClient(ctx context.Context, clientID string) (err error) {
	defer t.observe("RevokeClient", time.Now(), &err)
	return t.next.RevokeClient(ctx, clientID)
}

func (t *Storage) UpsertUser(ctx context.Context, subject string, update func(u storage.User, found bool) (storage.User, error)) (_ storage.User, err error) {
	defer t.observe("UpsertUser", time.Now(), &err)
	return t.next.UpsertUser(ctx, subject, update)
}

func (t *Storage) GetUser(ctx context.Context, subject string) (_ storage.User, err error) {
	defer t.observe("GetUser", time.Now(), &err)
	return t.next.GetUser(ctx, subject)
}

func (t *Storage) ListUsers(ctx context.Context) (_ []storage.User, err error) {
	defer t.observe("ListUsers", time.Now(), &err)
	return t.next.ListUsers(ctx)
}

func (t *Storage) FindUsers(ctx context.Context, key storage.UserKey) (_ []storage.User, err error) {
	defer t.observe("FindUsers", time.Now(), &err)
	return t.next.FindUsers(ctx, key)
}

func (t *Storage) CompleteLogin(ctx context.Context, l storage.Login) (_ storage.User, err error) {
	defer t.observe("CompleteLogin", time.Now(), &err)
	return t.next.CompleteLogin(ctx, l)
}

func (t *Storage) CreateSession(ctx context.Context, s storage.Session) (err error) {
	defer t.observe("CreateSession", time.Now(), &err)
	return t.next.CreateSession(ctx, s)
}

func (t *Storage) GetSession(ctx context.Context, id string) (_ storage.Session, err error) {
	defer t.observe("GetSession", time.Now(), &err)
	return t.next.GetSession(ctx, id)
}

func (t *Storage) UpdateSession(ctx context.Context, id string, update func(storage.Session) (storage.Session, error)) (err error) {
	defer t.observe("UpdateSession", time.Now(), &err)
	return t.next.UpdateSession(ctx, id, update)
}

func (t *Storage) DeleteSession(ctx context.Context, id string) (err error) {
	defer t.observe("DeleteSession", time.Now(), &err)
	return t.next.DeleteSession(ctx, id)
}

func (t *Storage) SessionsOf(ctx context.Context, subject string) (_ []storage.Session, err error) {
	defer t.observe("SessionsOf", time.Now(), &err)
	return t.next.SessionsOf(ctx, subject)
}

func (t *Storage) CreateUpstreamState(ctx context.Context, s storage.UpstreamState) (err error) {
	defer t.observe("CreateUpstreamState", time.Now(), &err)
	return t.next.CreateUpstreamState(ctx, s)
}

func (t *Storage) ConsumeUpstreamState(ctx context.Context, id string) (_ storage.UpstreamState, err error) {
	defer t.observe("ConsumeUpstreamState", time.Now(), &err)
	return t.next.ConsumeUpstreamState(ctx, id)
}

func (t *Storage) CreateDeviceAuthorization(ctx context.Context, d storage.DeviceAuthorization) (err error) {
	defer t.observe("CreateDeviceAuthorization", time.Now(), &err)
	return t.next.CreateDeviceAuthorization(ctx, d)
}

func (t *Storage) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (_ storage.DeviceAuthorization, err error) {
	defer t.observe("GetDeviceAuthorizationByUserCode", time.Now(), &err)
	return t.next.GetDeviceAuthorizationByUserCode(ctx, userCode)
}

func (t *Storage) UpdateDeviceAuthorization(ctx context.Context, id string, update func(storage.DeviceAuthorization) (storage.DeviceAuthorization, error)) (_ storage.DeviceAuthorization, err error) {
	defer t.observe("UpdateDeviceAuthorization", time.Now(), &err)
	return t.next.UpdateDeviceAuthorization(ctx, id, update)
}

func (t *Storage) GetConsent(ctx context.Context, subject string, clientID string) (_ storage.Consent, err error) {
	defer t.observe("GetConsent", time.Now(), &err)
	return t.next.GetConsent(ctx, subject, clientID)
}

func (t *Storage) PutConsent(ctx context.Context, c storage.Consent) (err error) {
	defer t.observe("PutConsent", time.Now(), &err)
	return t.next.PutConsent(ctx, c)
}

func (t *Storage) GetKeySet(ctx context.Context) (_ storage.KeySet, err error) {
	defer t.observe("GetKeySet", time.Now(), &err)
	return t.next.GetKeySet(ctx)
}

func (t *Storage) UpdateKeySet(ctx context.Context, update func(storage.KeySet) (storage.KeySet, error)) (err error) {
	defer t.observe("UpdateKeySet", time.Now(), &err)
	return t.next.UpdateKeySet(ctx, update)
}

func (t *Storage) AcquireLease(ctx context.Context, name string, holder string, ttl time.Duration) (_ bool, err error) {
	defer t.observe("AcquireLease", time.Now(), &err)
	return t.next.AcquireLease(ctx, name, holder, ttl)
}

func (t *Storage) GarbageCollect(ctx context.Context, now time.Time) (_ storage.GCResult, err error) {
	defer t.observe("GarbageCollect", time.Now(), &err)
	return t.next.GarbageCollect(ctx, now)
}

func (t *Storage) Count(ctx context.Context) (_ storage.RecordCounts, err error) {
	defer t.observe("Count", time.Now(), &err)
	return t.next.Count(ctx)
}

func (t *Storage) Ping(ctx context.Context) (err error) {
	defer t.observe("Ping", time.Now(), &err)
	return t.next.Ping(ctx)
}
