package op

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dingbridge/dingbridge/storage"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a session
// ends, every client that was logged in through it and registered a
// backchannelLogoutURI is told, server to server, with a signed logout token.
// Delivery runs in the background, so the person's logout page never waits on
// a slow or dead client.

const (
	backchannelEvent    = "http://schemas.openid.net/event/backchannel-logout"
	backchannelTimeout  = 5 * time.Second
	backchannelAttempts = 3
)

type logoutClaims struct {
	jwt.Claims
	SessionID string                    `json:"sid,omitempty"`
	Events    map[string]map[string]any `json:"events"`
}

// notifyLogout tells the session's clients that it ended.
func (p *Provider) notifyLogout(ctx context.Context, sess storage.Session) {
	for _, clientID := range sess.Clients {
		c, err := p.settings().clients.get(ctx, clientID)
		if err != nil || c.BackchannelLogoutURI == "" {
			continue
		}
		token, err := p.logoutToken(ctx, clientID, sess)
		if err != nil {
			p.log.ErrorContext(ctx, "back-channel logout: sign logout token", "client", clientID, "err", err)
			p.metrics.BackchannelLogout("error")
			continue
		}
		p.background.Add(1)
		go func() {
			defer p.background.Done()
			p.deliverLogout(clientID, c.BackchannelLogoutURI, token)
		}()
	}
}

func (p *Provider) logoutToken(ctx context.Context, clientID string, sess storage.Session) (string, error) {
	key, err := p.keys.SigningKey(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Algorithm, Key: key.Private},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", key.ID))
	if err != nil {
		return "", err
	}
	now := p.now()
	claims := logoutClaims{
		Claims: jwt.Claims{
			Issuer: p.issuer, Subject: sess.Subject, Audience: jwt.Audience{clientID},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)),
			ID: randomToken(16),
		},
		SessionID: sess.ID,
		Events:    map[string]map[string]any{backchannelEvent: {}},
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// deliverLogout POSTs the token, retrying a few times with a growing pause: a
// client that is restarting should still hear of the logout.
func (p *Provider) deliverLogout(clientID, endpoint, token string) {
	pause := time.Second
	for attempt := 1; ; attempt++ {
		err := p.postLogout(endpoint, token)
		if err == nil {
			p.log.Debug("back-channel logout delivered", "client", clientID)
			p.metrics.BackchannelLogout("ok")
			return
		}
		if attempt == backchannelAttempts {
			p.log.Warn("back-channel logout not delivered", "client", clientID, "attempts", attempt, "err", err)
			p.metrics.BackchannelLogout("failed")
			return
		}
		time.Sleep(pause)
		pause *= 2
	}
}

func (p *Provider) postLogout(endpoint, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), backchannelTimeout)
	defer cancel()
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.httpClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("answered HTTP %d", resp.StatusCode)
	}
	return nil
}
