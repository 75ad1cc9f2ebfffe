package op

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dingbridge/dingbridge/storage"
)

// errInvalidToken: the bearer token is not a live access token of ours (garbage,
// tampered, expired, revoked, its client or person gone). RFC 6750 §3.1 answers
// all of these alike: 401 invalid_token.
var errInvalidToken = errors.New("access token is invalid, expired or revoked")

// userinfo serves the UserInfo endpoint (OIDC Core §5.3) instead of zitadel's,
// which answers a revoked token with 403 access_denied and no challenge. Relying
// parties (openid-client among them) look for the WWW-Authenticate challenge of
// RFC 6750 §3 to learn that they must log the person in again.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	token, err := zop.ParseUserinfoRequest(r, p.oidc.Decoder())
	if err != nil || token == "" {
		// §3.1: a request without credentials gets the challenge but no error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`"`)
		httphelper.MarshalJSONWithStatus(w, oidc.ErrInvalidRequest().WithDescription("no access token"), http.StatusUnauthorized)
		return
	}
	info, err := p.userinfoForToken(r.Context(), token)
	if errors.Is(err, errInvalidToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`", error="invalid_token", error_description="`+errInvalidToken.Error()+`"`)
		httphelper.MarshalJSONWithStatus(w, &oidc.Error{ErrorType: "invalid_token", Description: errInvalidToken.Error()}, http.StatusUnauthorized)
		return
	}
	if err != nil {
		p.log.ErrorContext(r.Context(), "userinfo", "err", err)
		httphelper.MarshalJSONWithStatus(w, oidc.ErrServerError(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httphelper.MarshalJSON(w, info)
}

// userinfoForToken opens an access token (sealed by zitadel's crypto as
// "tokenID:subject") and returns the claims its scopes release.
func (p *Provider) userinfoForToken(ctx context.Context, token string) (*oidc.UserInfo, error) {
	sealed, err := p.oidc.Crypto().Decrypt(token)
	if err != nil {
		return nil, errInvalidToken
	}
	tokenID, subject, ok := strings.Cut(sealed, ":")
	if !ok || tokenID == "" || subject == "" {
		return nil, errInvalidToken
	}
	info := new(oidc.UserInfo)
	if err := p.setUserinfoFromToken(ctx, info, tokenID, subject); err != nil {
		return nil, err
	}
	return info, nil
}

// setUserinfoFromToken fills info for a live access token; errInvalidToken
// when it is not one, another error when storage failed.
func (p *Provider) setUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject string) error {
	at, err := p.store.GetAccessToken(ctx, tokenID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && at.Subject != subject) {
		return errInvalidToken
	}
	if err != nil {
		return fmt.Errorf("load access token: %w", err)
	}
	if _, err := p.settings().clients.get(ctx, at.ClientID); errors.Is(err, errUnknownClient) {
		return errInvalidToken // the client of this token no longer exists
	} else if err != nil {
		return err
	}
	u, err := p.store.GetUser(ctx, subject)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
		return errInvalidToken
	}
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	p.settings().claims.setUserinfo(info, u, at.Scopes)
	return nil
}
