package op

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dingbridge/dingbridge/storage"
)

// oidcStorage adapts storage.Storage (plus keys and clients) to zitadel's
// op.Storage. It is the only place that knows both, so zitadel's interfaces never
// leak into package storage.
type oidcStorage struct{ p *Provider }

var (
	_ zop.Storage                        = (*oidcStorage)(nil)
	_ zop.CanSetUserinfoFromRequest      = (*oidcStorage)(nil)
	_ zop.CanTerminateSessionFromRequest = (*oidcStorage)(nil)
)

// --- authorization requests and codes ---

func (s *oidcStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (zop.AuthRequest, error) {
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256; plain is not allowed")
	}
	c, err := s.p.settings().clients.get(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	if c.Public && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("public clients must use PKCE (code_challenge with S256)")
	}
	if c.RequirePKCE && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("this client must use PKCE (code_challenge with S256)")
	}
	now := s.p.now().UTC()
	a := storage.AuthRequest{
		ID:                  randomToken(16),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		Scopes:              req.Scopes,
		State:               req.State,
		Nonce:               req.Nonce,
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt:              req.Prompt,
		MaxAge:              req.MaxAge,
		LoginHint:           req.LoginHint,
		HintSubject:         hintSubject,
		CreatedAt:           now,
		Expiry:              now.Add(s.p.settings().lifetimes.AuthRequest),
	}
	for _, tag := range req.UILocales {
		a.UILocales = append(a.UILocales, tag.String())
	}
	if err := s.p.store.CreateAuthRequest(ctx, a); err != nil {
		if errors.Is(err, storage.ErrCapacity) {
			s.p.log.WarnContext(ctx, "authorize: too many logins in progress", "client", req.ClientID, "err", err)
			return nil, temporarilyUnavailable("too many logins in progress; try again later")
		}
		return nil, fmt.Errorf("store auth request: %w", err)
	}
	return &authRequest{AuthRequest: a}, nil
}

func (s *oidcStorage) AuthRequestByID(ctx context.Context, id string) (zop.AuthRequest, error) {
	a, err := s.p.store.GetAuthRequest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("auth request: %w", err)
	}
	return &authRequest{AuthRequest: a}, nil
}

// AuthRequestByCode finds the request a code was issued for, without spending the
// code: zitadel calls this before it authenticates the client, and a client whose
// first attempt fails authentication (x/oauth2 retries basic auth as post) must
// not lose its code. The code is claimed when tokens are issued (redeemCode).
//
// A code already used is returned too, until it expires, as what the code
// itself remembers of its request (its client, redirect URI and PKCE
// challenge): zitadel then checks the client — its secret, or for a public
// client the PKCE verifier — and only a replay by the code's own client
// reaches redeemCode and revokes what the code issued. Anyone else holding a
// used code is told invalid_grant and revokes nothing.
func (s *oidcStorage) AuthRequestByCode(ctx context.Context, code string) (zop.AuthRequest, error) {
	id := hashToken(code)
	c, err := s.p.store.GetAuthCode(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	if !c.ClaimedAt.IsZero() {
		return &authRequest{codeID: id, AuthRequest: storage.AuthRequest{
			ID: c.AuthRequestID, ClientID: c.ClientID, RedirectURI: c.RedirectURI, ResponseType: string(oidc.ResponseTypeCode),
			CodeChallenge: c.CodeChallenge, CodeChallengeMethod: c.CodeChallengeMethod, Expiry: c.Expiry,
		}}, nil
	}
	a, err := s.p.store.GetAuthRequest(ctx, c.AuthRequestID)
	if err != nil {
		return nil, fmt.Errorf("auth request of code: %w", err)
	}
	return &authRequest{AuthRequest: a, codeID: id}, nil
}

// redeemCode spends the code of an authorization_code token request, once.
func (s *oidcStorage) redeemCode(ctx context.Context, req zop.TokenRequest) error {
	r, ok := req.(*authRequest)
	if !ok || r.codeID == "" {
		return nil
	}
	c, err := s.p.store.ClaimAuthCode(ctx, r.codeID)
	if errors.Is(err, storage.ErrAlreadyUsed) {
		return s.codeReplayed(ctx, c)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return oidc.ErrInvalidGrant().WithDescription("code expired")
	}
	return err
}

// codeReplayed answers a code presented twice: it leaked, so everything its first
// use issued is revoked (RFC 6749 §4.1.2).
func (s *oidcStorage) codeReplayed(ctx context.Context, c storage.AuthCode) error {
	s.p.metrics.CodeReplay()
	s.p.log.WarnContext(ctx, "security: authorization code replayed; revoking its tokens",
		"client", c.ClientID, "authRequest", c.AuthRequestID)
	if err := s.p.store.RevokeGrant(ctx, c.AuthRequestID, s.revocationEnd(time.Time{})); err != nil {
		s.p.log.ErrorContext(ctx, "revoke tokens of replayed code", "err", err)
	}
	return oidc.ErrInvalidGrant().WithDescription("code already used")
}

func (s *oidcStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	a, err := s.p.store.GetAuthRequest(ctx, id)
	if err != nil {
		return fmt.Errorf("auth request: %w", err)
	}
	return s.p.store.CreateAuthCode(ctx, storage.AuthCode{
		ID: hashToken(code), AuthRequestID: id, ClientID: a.ClientID,
		RedirectURI: a.RedirectURI, CodeChallenge: a.CodeChallenge, CodeChallengeMethod: a.CodeChallengeMethod,
		Expiry: s.p.now().UTC().Add(s.p.settings().lifetimes.AuthCode),
	})
}

// DeleteAuthRequest is zitadel's call once a code brought its tokens. The
// request goes; the spent code stays until it expires and carries what
// recognising a replay by the code's own client needs (AuthRequestByCode).
func (s *oidcStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	err := s.p.store.DeleteAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// --- tokens ---

// grantOf returns who a token request is for and which login (grant) it belongs
// to. Every token one login produces shares the grant, so a replayed code or a
// revoked refresh token can take them all back.
func grantOf(ctx context.Context, req zop.TokenRequest) (grantID, clientID string, amr []string, authTime time.Time, err error) {
	switch r := req.(type) {
	case *authRequest:
		return r.ID, r.ClientID, r.AMR, r.AuthTime, nil
	case *refreshRequest:
		return r.GrantID, r.ClientID, r.AMR, r.AuthTime, nil
	case *zop.DeviceAuthorizationState:
		g, ok := deviceGrantFrom(ctx)
		if !ok {
			return "", "", nil, time.Time{}, errors.New("device grant missing from the token request")
		}
		return g.id, r.ClientID, r.AMR, r.AuthTime, nil
	default:
		return "", "", nil, time.Time{}, oidc.ErrUnsupportedGrantType()
	}
}

func (s *oidcStorage) newAccessToken(ctx context.Context, req zop.TokenRequest) (storage.AccessToken, error) {
	grantID, clientID, _, _, err := grantOf(ctx, req)
	if err != nil {
		return storage.AccessToken{}, err
	}
	lifetime := s.p.settings().lifetimes.AccessToken
	if c, err := s.p.settings().clients.get(ctx, clientID); err != nil {
		return storage.AccessToken{}, err
	} else if c.AccessTokenLifetime > 0 {
		lifetime = c.AccessTokenLifetime
	}
	now := s.p.now().UTC()
	return storage.AccessToken{
		ID: randomToken(16), GrantID: grantID, ClientID: clientID, Subject: req.GetSubject(),
		Scopes: req.GetScopes(), Audience: req.GetAudience(), CreatedAt: now, Expiry: now.Add(lifetime),
	}, nil
}

func (s *oidcStorage) CreateAccessToken(ctx context.Context, req zop.TokenRequest) (string, time.Time, error) {
	if err := s.redeemCode(ctx, req); err != nil {
		return "", time.Time{}, err
	}
	at, err := s.newAccessToken(ctx, req)
	if err != nil {
		return "", time.Time{}, err
	}
	err = commitTokens(ctx, func(ctx context.Context) error {
		return s.issued(ctx, s.p.store.IssueTokens(ctx, at, nil, storage.Rotation{}), at, time.Time{}, false)
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return at.ID, at.Expiry, nil
}

// CreateAccessAndRefreshTokens issues a new pair; on a refresh the presented token
// is rotated out in the same transaction, so of two concurrent refreshes with one
// token only one succeeds.
func (s *oidcStorage) CreateAccessAndRefreshTokens(ctx context.Context, req zop.TokenRequest, current string) (string, string, time.Time, error) {
	if err := s.redeemCode(ctx, req); err != nil {
		return "", "", time.Time{}, err
	}
	at, err := s.newAccessToken(ctx, req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	_, _, amr, authTime, _ := grantOf(ctx, req)
	now := at.CreatedAt
	raw := randomToken(32)
	rt := storage.RefreshToken{
		ID: hashToken(raw), GrantID: at.GrantID, ClientID: at.ClientID, Subject: at.Subject,
		Scopes: at.Scopes, Audience: at.Audience, AMR: amr, AuthTime: authTime,
		CreatedAt: now, GrantExpiry: now.Add(s.p.settings().lifetimes.RefreshTokenAbsolute),
	}
	var rotate storage.Rotation
	switch r := req.(type) {
	case *authRequest:
		rt.ConnectorID, rt.SessionID = r.ConnectorID, r.SessionID
	case *zop.DeviceAuthorizationState:
		g, _ := deviceGrantFrom(ctx)
		rt.ConnectorID, rt.SessionID = g.connectorID, g.sessionID
	case *refreshRequest:
		// A refresh may narrow the new access token's scopes; the grant keeps what
		// was consented to (RFC 6749 §6). The chain's absolute end carries over.
		rt.ConnectorID, rt.SessionID, rt.Scopes = r.ConnectorID, r.SessionID, r.Scopes
		if !r.GrantExpiry.IsZero() {
			rt.GrantExpiry = r.GrantExpiry
		}
		rotate = storage.Rotation{ID: hashToken(current), Grace: s.p.settings().lifetimes.RefreshTokenReuseGrace}
	}
	rt.Expiry = now.Add(s.p.settings().lifetimes.RefreshToken)
	if rt.GrantExpiry.Before(rt.Expiry) {
		rt.Expiry = rt.GrantExpiry
	}
	err = commitTokens(ctx, func(ctx context.Context) error {
		return s.issued(ctx, s.p.store.IssueTokens(ctx, at, &rt, rotate), at, rt.GrantExpiry, rotate.ID != "")
	})
	if err != nil {
		return "", "", time.Time{}, err
	}
	return at.ID, raw, at.Expiry, nil
}

// issued maps what IssueTokens answered for the tokens of at's grant (which
// ends at grantEnd) to what the client is told. A rotated token presented
// again means it leaked: its login is revoked.
func (s *oidcStorage) issued(ctx context.Context, err error, at storage.AccessToken, grantEnd time.Time, rotating bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrAlreadyUsed):
		return s.refreshReused(ctx, at.GrantID, at.ClientID, s.revocationEnd(grantEnd))
	case errors.Is(err, storage.ErrRevoked):
		return oidc.ErrInvalidGrant().WithDescription("the grant was revoked")
	case errors.Is(err, storage.ErrNotFound) && rotating:
		return oidc.ErrInvalidGrant().WithDescription("refresh token expired or revoked")
	default:
		return fmt.Errorf("store tokens: %w", err)
	}
}

func (s *oidcStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (zop.RefreshTokenRequest, error) {
	rt, err := s.p.store.GetRefreshToken(ctx, hashToken(token))
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	if !rt.RotatedAt.IsZero() {
		if s.p.now().Sub(rt.RotatedAt) > s.p.settings().lifetimes.RefreshTokenReuseGrace {
			return nil, s.refreshReused(ctx, rt.GrantID, rt.ClientID, s.revocationEnd(time.Time{}))
		}
		// A retry within the grace window: storage kept only a tombstone of
		// the rotated token, so the grant's details come from its successor,
		// which the retry's answer replaces.
		if rt, err = s.retried(ctx, rt); err != nil {
			return nil, err
		}
	}
	u, err := s.p.store.GetUser(ctx, rt.Subject)
	if err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	if u.Disabled {
		return nil, errors.New("user is disabled")
	}
	if err := s.p.stillMember(ctx, u); err != nil {
		return nil, fmt.Errorf("refresh refused: %w", err)
	}
	return &refreshRequest{RefreshToken: rt}, nil
}

// retried fills a rotated token's tombstone with its successor's grant details.
func (s *oidcStorage) retried(ctx context.Context, rt storage.RefreshToken) (storage.RefreshToken, error) {
	if rt.Successor == "" {
		return rt, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	}
	next, err := s.p.store.GetRefreshToken(ctx, rt.Successor)
	if errors.Is(err, storage.ErrNotFound) {
		return rt, oidc.ErrInvalidGrant().WithDescription("refresh token expired or revoked")
	}
	if err != nil {
		return rt, fmt.Errorf("successor of refresh token: %w", err)
	}
	if !next.RotatedAt.IsZero() {
		// The client did receive the answer it retries, and used it.
		return rt, s.refreshReused(ctx, rt.GrantID, rt.ClientID, s.revocationEnd(time.Time{}))
	}
	rt.Scopes, rt.Audience, rt.AMR, rt.AuthTime = next.Scopes, next.Audience, next.AMR, next.AuthTime
	rt.ConnectorID, rt.SessionID, rt.CreatedAt, rt.GrantExpiry = next.ConnectorID, next.SessionID, next.CreatedAt, next.GrantExpiry
	return rt, nil
}

// revocationEnd is how long a revoked grant stays revoked: until no token of it
// could be issued any more — the end of its refresh chain (grantExpiry, when
// known), at the latest a whole refresh lifetime from now.
func (s *oidcStorage) revocationEnd(grantExpiry time.Time) time.Time {
	end := s.p.now().UTC().Add(s.p.settings().lifetimes.RefreshTokenAbsolute)
	if !grantExpiry.IsZero() && grantExpiry.Before(end) {
		return grantExpiry
	}
	return end
}

// refreshReused answers a refresh token presented after it was rotated: either
// the client or a thief holds a copy, and the server cannot tell which, so the
// whole chain dies (RFC 9700 §4.14.2) and stays dead until until.
func (s *oidcStorage) refreshReused(ctx context.Context, grantID, clientID string, until time.Time) error {
	s.p.metrics.RefreshReuse()
	s.p.log.WarnContext(ctx, "security: rotated refresh token reused; revoking its login", "client", clientID, "grant", grantID)
	if err := s.p.store.RevokeGrant(ctx, grantID, until); err != nil {
		s.p.log.ErrorContext(ctx, "revoke reused refresh token's grant", "err", err)
	}
	return oidc.ErrInvalidGrant().WithDescription("refresh token already used")
}

func (s *oidcStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rt, err := s.p.store.GetRefreshToken(ctx, hashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return "", "", zop.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	return rt.Subject, rt.ID, nil
}

// RevokeToken implements RFC 7009. zitadel hands over a token ID for both kinds;
// unknown tokens are not an error (the client's goal is reached).
func (s *oidcStorage) RevokeToken(ctx context.Context, tokenID, _ string, clientID string) *oidc.Error {
	if at, err := s.p.store.GetAccessToken(ctx, tokenID); err == nil {
		if at.ClientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
		}
		if err := s.p.store.DeleteAccessToken(ctx, tokenID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	rt, err := s.p.store.GetRefreshToken(ctx, tokenID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if rt.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
	}
	// RFC 7009 §2.1: revoking a refresh token also invalidates the access tokens of its grant.
	if err := s.p.store.RevokeGrant(ctx, rt.GrantID, s.revocationEnd(rt.GrantExpiry)); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// TerminateSession is zitadel's fallback; TerminateSessionFromRequest is what runs.
func (s *oidcStorage) TerminateSession(context.Context, string, string) error { return nil }

// TerminateSessionFromRequest ends the browser's SSO session (found by the
// end_session handler from the cookie) once zitadel has validated the request.
func (s *oidcStorage) TerminateSessionFromRequest(ctx context.Context, req *zop.EndSessionRequest) (string, error) {
	id, _ := ctx.Value(sessionIDKey{}).(string)
	if id == "" {
		return req.RedirectURI, nil
	}
	sess, err := s.p.store.GetSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return req.RedirectURI, nil
	}
	if err != nil {
		return "", fmt.Errorf("load session: %w", err)
	}
	if err := s.p.store.DeleteSession(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("end session: %w", err)
	}
	s.p.log.InfoContext(ctx, "logout", "subject", sess.Subject, "client", req.ClientID)
	s.p.notifyLogout(ctx, sess)
	return req.RedirectURI, nil
}

// --- claims ---

func (s *oidcStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil // deprecated by zitadel; SetUserinfoFromRequest does the work
}

func (s *oidcStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req zop.IDTokenRequest, scopes []string) error {
	u, err := s.p.store.GetUser(ctx, req.GetSubject())
	if err != nil {
		return fmt.Errorf("user for id_token: %w", err)
	}
	s.p.settings().claims.setUserinfo(info, u, scopes)
	// sid ties the id_token to the SSO session, for logout (OIDC Front/Back-Channel Logout).
	switch r := req.(type) {
	case *authRequest:
		if r.SessionID != "" {
			info.AppendClaims("sid", r.SessionID)
		}
	case *refreshRequest:
		if r.SessionID != "" {
			info.AppendClaims("sid", r.SessionID)
		}
	case *zop.DeviceAuthorizationState:
		if g, ok := deviceGrantFrom(ctx); ok && g.sessionID != "" {
			info.AppendClaims("sid", g.sessionID)
		}
	}
	return nil
}

// SetUserinfoFromToken is zitadel's hook; the userinfo endpoint is ours
// (userinfo.go) and shares setUserinfoFromToken.
func (s *oidcStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	if err := s.p.setUserinfoFromToken(ctx, info, tokenID, subject); err != nil {
		return oidc.ErrAccessDenied().WithDescription("access token is invalid, expired or revoked")
	}
	return nil
}

func (s *oidcStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	at, err := s.p.store.GetAccessToken(ctx, tokenID)
	if err != nil || at.Subject != subject {
		return errors.New("token inactive")
	}
	// RFC 7662 §2.2 leaves it to the server whom to tell; tell only the token's audience.
	if !slices.Contains(at.Audience, clientID) {
		return errors.New("token not issued for the introspecting client")
	}
	u, err := s.p.store.GetUser(ctx, subject)
	if err != nil || u.Disabled {
		return errors.New("user unknown or disabled")
	}
	info := new(oidc.UserInfo)
	s.p.settings().claims.setUserinfo(info, u, at.Scopes)
	resp.SetUserInfo(info)
	resp.Scope = at.Scopes
	resp.ClientID = at.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(at.Expiry)
	resp.IssuedAt = oidc.FromTime(at.CreatedAt)
	resp.Audience = at.Audience
	resp.Issuer = s.p.issuer
	return nil
}

func (s *oidcStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil // only used for JWT access tokens, which dingbridge does not issue
}

func (s *oidcStorage) userActive(ctx context.Context, subject string) error {
	u, err := s.p.store.GetUser(ctx, subject)
	if err != nil {
		return fmt.Errorf("user: %w", err)
	}
	if u.Disabled {
		return errors.New("user is disabled")
	}
	return nil
}

// --- clients ---

func (s *oidcStorage) GetClientByClientID(ctx context.Context, id string) (zop.Client, error) {
	c, err := s.p.settings().clients.get(ctx, id)
	if errors.Is(err, errUnknownClient) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client").WithParent(err)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *oidcStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if err := s.p.settings().clients.authenticate(ctx, id, secret); err != nil {
		clientAuthFrom(ctx).set(func(a *clientAuth) { a.failed = true })
		s.p.log.InfoContext(ctx, "client authentication failed", "client", id, "reason", err.Error())
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

// JWT profile grants are not offered.
func (s *oidcStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (s *oidcStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// --- keys ---

func (s *oidcStorage) SigningKey(ctx context.Context) (zop.SigningKey, error) {
	k, err := s.p.keys.SigningKey(ctx)
	if err != nil {
		return nil, err
	}
	return signingKey{k}, nil
}

func (s *oidcStorage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	pub, err := s.p.keys.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	var algs []jose.SignatureAlgorithm
	for _, k := range pub {
		if alg := jose.SignatureAlgorithm(k.Algorithm); !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	return algs, nil
}

func (s *oidcStorage) KeySet(ctx context.Context) ([]zop.Key, error) {
	pub, err := s.p.keys.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]zop.Key, len(pub))
	for i, k := range pub {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s *oidcStorage) Health(ctx context.Context) error { return s.p.store.Ping(ctx) }

// --- request types zitadel works with ---

// authRequest is a stored AuthRequest as zitadel's op.AuthRequest.
type authRequest struct {
	storage.AuthRequest
	codeID string // set when found by code: the code to spend when tokens are issued
}

func (a *authRequest) GetID() string          { return a.ID }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return a.AMR }
func (a *authRequest) GetAudience() []string  { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.AuthTime }
func (a *authRequest) GetClientID() string    { return a.ClientID }
func (a *authRequest) GetNonce() string       { return a.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.ResponseType)
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.ResponseMode)
}
func (a *authRequest) GetScopes() []string { return a.Scopes }
func (a *authRequest) GetState() string    { return a.State }
func (a *authRequest) GetSubject() string  { return a.Subject }
func (a *authRequest) Done() bool          { return a.AuthRequest.Done }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}

// LogValue keeps state, nonce and PKCE values out of zitadel's logs.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.ID), slog.String("client", a.ClientID),
		slog.String("redirect_uri", a.RedirectURI))
}

// refreshRequest is a stored RefreshToken as zitadel's op.RefreshTokenRequest.
type refreshRequest struct {
	storage.RefreshToken
	current []string // scopes narrowed by the refresh request, if any
}

func (r *refreshRequest) GetAMR() []string       { return r.AMR }
func (r *refreshRequest) GetAudience() []string  { return r.Audience }
func (r *refreshRequest) GetAuthTime() time.Time { return r.AuthTime }
func (r *refreshRequest) GetClientID() string    { return r.ClientID }
func (r *refreshRequest) GetSubject() string     { return r.Subject }
func (r *refreshRequest) GetScopes() []string {
	if r.current != nil {
		return r.current
	}
	return r.Scopes
}
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.current = scopes }

// randomToken returns n random bytes, base64url: IDs, tokens, states.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how bearer secrets (codes, refresh tokens, states) are keyed in
// storage: a stolen database file yields no usable token.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
