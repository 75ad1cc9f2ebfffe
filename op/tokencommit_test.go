package op_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// signedFirstStore holds a code exchange's IssueTokens until zitadel has
// signed the ID token, which it does after asking for the tokens and before
// DeleteAuthRequest: so IssueTokens returns only if the commit and the
// signature overlap. It then answers with failWith, when set, instead of
// committing.
type signedFirstStore struct {
	storage.Storage
	failWith  error
	signed    chan struct{}
	once      sync.Once
	committed atomic.Bool
}

func (s *signedFirstStore) IssueTokens(ctx context.Context, access storage.AccessToken, refresh *storage.RefreshToken, rotate storage.Rotation) error {
	select {
	case <-s.signed:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second): // a guard against a deadlock, not a measurement
		return errors.New("the ID token was not signed while the tokens' commit was pending")
	}
	if s.failWith != nil {
		return s.failWith
	}
	err := s.Storage.IssueTokens(ctx, access, refresh, rotate)
	s.committed.Store(err == nil)
	return err
}

func (s *signedFirstStore) DeleteAuthRequest(ctx context.Context, id string) error {
	s.once.Do(func() { close(s.signed) })
	return s.Storage.DeleteAuthRequest(ctx, id)
}

// The ID token is signed while the tokens are being committed, and the answer
// still goes out only after the commit: the tokens it carries are durable.
func TestTheIDTokenIsSignedWhileTheTokensCommit(t *testing.T) {
	store := &signedFirstStore{signed: make(chan struct{})}
	e := newEnv(t, envOptions{wrapStorage: func(s storage.Storage) storage.Storage { store.Storage = s; return store }})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	tokens := e.loginTokens(t, party)
	if !store.committed.Load() {
		t.Fatal("the token answer arrived before its tokens were committed")
	}
	if tokens.IDToken == "" || tokens.RefreshToken == "" {
		t.Fatalf("answer without an ID token or refresh token: %+v", tokens)
	}
	if _, err := refreshWith(party, tokens.RefreshToken); err != nil {
		t.Fatalf("the refresh token of the answer: %v", err)
	}
}

// When the commit fails after zitadel wrote its answer, that answer never
// reaches the client: it gets the commit's OAuth error instead.
func TestAFailedCommitReplacesTheHeldAnswer(t *testing.T) {
	store := &signedFirstStore{signed: make(chan struct{}), failWith: storage.ErrRevoked}
	e := newEnv(t, envOptions{wrapStorage: func(s storage.Storage) storage.Storage { store.Storage = s; return store }})
	party := e.relyingParty(rpClientID, rpSecret, rpRedirectURI)
	a := &loginAttempt{}
	tokens, err := exchange(t, party, newBrowser(t).loginAt(e.authorizeURL(party, a)), a)
	if oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("code exchange whose commit failed: tokens %v, err %v; want invalid_grant", tokens, err)
	}
	if store.committed.Load() {
		t.Fatal("the tokens were committed")
	}
}
