package storagetest

import (
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// Fixtures fill every field, so a round trip that drops one fails.

func client(id string) storage.Client {
	t0 := now()
	return storage.Client{
		ID:                     id,
		Name:                   "Grafana (" + id + ")",
		SecretHash:             "$2a$10$abcdefghijklmnopqrstuuJ1q5Xy0m3o9nZfMZ6pS8s4W5ZxY7a2K",
		RedirectURIs:           []string{"https://grafana.example.com/login/generic_oauth", "http://127.0.0.1:3000/cb"},
		PostLogoutRedirectURIs: []string{"https://grafana.example.com/"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		Scopes:                 []string{"groups", "offline_access"},
		RequireConsent:         true,
		IDTokenLifetime:        time.Hour,
		AccessTokenLifetime:    10 * time.Minute,
		CreatedAt:              t0,
		UpdatedAt:              t0.Add(time.Second),
	}
}

func publicClient(id string) storage.Client {
	c := client(id)
	c.SecretHash, c.Public = "", true
	return c
}

func authRequest(id string, expiry time.Time) storage.AuthRequest {
	return storage.AuthRequest{
		ID:                  id,
		ClientID:            "grafana",
		RedirectURI:         "https://grafana.example.com/login/generic_oauth",
		Scopes:              []string{"openid", "profile", "email"},
		State:               "xyz-state",
		Nonce:               "n-0S6_WzA2Mj",
		ResponseType:        "code",
		ResponseMode:        "query",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		Prompt:              []string{"login", "consent"},
		MaxAge:              uintPtr(300),
		UILocales:           []string{"zh-CN", "en"},
		LoginHint:           "someone@example.com",
		HintSubject:         "union-hint",
		DeviceID:            "device-1",
		CreatedAt:           now(),
		Expiry:              expiry,
	}
}

// doneAuthRequest is a request after the person logged in upstream.
func doneAuthRequest(id string, expiry time.Time) storage.AuthRequest {
	a := authRequest(id, expiry)
	a.Done = true
	a.Subject = "union-123"
	a.AuthTime = now().Add(-time.Minute)
	a.AMR = []string{"pwd", "mfa"}
	a.ConnectorID = "dingtalk"
	return a
}

func authCode(id string, expiry time.Time) storage.AuthCode {
	return storage.AuthCode{ID: id, AuthRequestID: "req-" + id, ClientID: "grafana", Expiry: expiry}
}

func upstreamState(id string, expiry time.Time) storage.UpstreamState {
	return storage.UpstreamState{
		ID:             id,
		AuthRequestID:  "req-" + id,
		ConnectorID:    "dingtalk",
		BrowserBinding: "binding-" + id,
		Expiry:         expiry,
	}
}

func accessToken(id, grantID string, expiry time.Time) storage.AccessToken {
	return storage.AccessToken{
		ID:        id,
		GrantID:   grantID,
		ClientID:  "grafana",
		Subject:   "union-123",
		Scopes:    []string{"openid", "profile"},
		Audience:  []string{"grafana", "api"},
		CreatedAt: now(),
		Expiry:    expiry,
	}
}

func refreshToken(id, grantID string, expiry time.Time) *storage.RefreshToken {
	return &storage.RefreshToken{
		ID:          id,
		GrantID:     grantID,
		ClientID:    "grafana",
		Subject:     "union-123",
		Scopes:      []string{"openid", "offline_access"},
		Audience:    []string{"grafana"},
		AMR:         []string{"pwd"},
		AuthTime:    now().Add(-time.Minute),
		ConnectorID: "dingtalk",
		CreatedAt:   now(),
		Expiry:      expiry,
	}
}

func user(subject string) storage.User {
	t0 := now()
	return storage.User{
		Subject:     subject,
		ConnectorID: "dingtalk",
		UnionID:     subject,
		OpenID:      "open-" + subject,
		UserID:      "staff-42",
		CorpID:      "ding0123456789",
		Nick:        "张三",
		AvatarURL:   "https://static.example.com/avatar.png",
		Email:       "zhangsan@example.com",
		Phone:       "+8613800138000",
		Title:       "工程师",
		JobNumber:   "E1024",
		OrgEmail:    "zhangsan@corp.example.com",
		Groups:      []string{"研发部", "研发部/后端组"},
		FirstLogin:  t0.Add(-24 * time.Hour),
		LastLogin:   t0,
		Disabled:    true,
	}
}

func keySet() storage.KeySet {
	t0 := now()
	tokenKey := make([]byte, 32)
	for i := range tokenKey {
		tokenKey[i] = byte(i * 7) // includes 0x00 and bytes above 0x7f
	}
	return storage.KeySet{
		SigningKeys: []storage.SigningKey{
			{
				ID:         "k1",
				Algorithm:  "RS256",
				PrivateJWK: []byte(`{"kty":"RSA","kid":"k1","n":"AQAB...","d":"..."}`),
				CreatedAt:  t0.Add(-48 * time.Hour),
				NotBefore:  t0.Add(-47 * time.Hour),
				RetiredAt:  t0.Add(-time.Hour),
				Expiry:     t0.Add(23 * time.Hour),
			},
			{
				ID:         "k2",
				Algorithm:  "ES256",
				PrivateJWK: []byte(`{"kty":"EC","kid":"k2","crv":"P-256"}`),
				CreatedAt:  t0.Add(-2 * time.Hour),
				NotBefore:  t0.Add(-time.Hour),
			},
		},
		TokenKey: tokenKey,
		Version:  7,
	}
}
