package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/dingbridge/dingbridge/upstream"
)

// The app access token (GET /gettoken, shared/dingtalk-api.md §4.2) lives 7200 s, and
// DingTalk rate-limits fetching it; it is per app. A Client keeps it until shortly
// before it expires, and fetches it once however many callers want it at that moment.
const (
	appTokenMargin     = 5 * time.Minute // dropped this long before DingTalk's expiry
	appTokenUnknownTTL = time.Minute     // kept this long when DingTalk gives no expires_in
)

// appTokenCache holds the token and the fetch in flight, if any.
type appTokenCache struct {
	mu      sync.Mutex
	token   string
	expires time.Time      // by the client's clock
	flight  *appTokenFetch // non-nil while one caller fetches
}

// appTokenFetch is one gettoken call that other callers wait for.
type appTokenFetch struct {
	done  chan struct{} // closed when token and err are set
	token string
	err   error
	// callerGone: the fetching caller's context ended, so err is not DingTalk's answer.
	callerGone bool
}

// appAccessToken returns the cached app access token, fetching it if it is missing or
// about to expire. While one caller fetches, the others wait for its answer.
func (c *Client) appAccessToken(ctx context.Context) (string, error) {
	cache := &c.appToken
	for {
		cache.mu.Lock()
		if cache.token != "" && c.now().Before(cache.expires) {
			token := cache.token
			cache.mu.Unlock()
			return token, nil
		}
		if fetch := cache.flight; fetch != nil {
			cache.mu.Unlock()
			select {
			case <-fetch.done:
			case <-ctx.Done():
				if errors.Is(ctx.Err(), context.Canceled) {
					return "", fmt.Errorf("app access token: caller gave up: %w", ctx.Err())
				}
				return "", fmt.Errorf("app access token: %w: none before the caller's deadline: %w", upstream.ErrUnavailable, ctx.Err())
			}
			if fetch.callerGone && ctx.Err() == nil {
				continue // the fetching caller gave up, not DingTalk: fetch again
			}
			return fetch.token, fetch.err
		}
		fetch := &appTokenFetch{done: make(chan struct{})}
		cache.flight = fetch
		cache.mu.Unlock()

		token, ttl, err := c.getToken(ctx)
		c.metrics.ObserveAppTokenFetch(resultOf(err))
		if err != nil {
			err = fmt.Errorf("app access token: %w", err)
		}
		fetch.token, fetch.err, fetch.callerGone = token, err, ctx.Err() != nil
		cache.mu.Lock()
		cache.flight = nil
		if err == nil {
			cache.token, cache.expires = token, c.now().Add(ttl)
		}
		cache.mu.Unlock()
		close(fetch.done)
		return token, err
	}
}

// dropAppToken forgets token after DingTalk refused it, unless a newer one has
// already replaced it.
func (c *Client) dropAppToken(token string) {
	c.appToken.mu.Lock()
	defer c.appToken.mu.Unlock()
	if c.appToken.token == token {
		c.appToken.token = ""
	}
}

// getToken is GET /gettoken?appkey=&appsecret=. It returns how long to keep the token.
func (c *Client) getToken(ctx context.Context) (string, time.Duration, error) {
	const path = "/gettoken"
	var answer struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	err := c.callOAPI(ctx, oapiRequest{
		api:    apiGetToken,
		method: http.MethodGet,
		path:   path,
		query:  func() url.Values { return url.Values{"appkey": {c.clientID}, "appsecret": {c.clientSecret}} },
	}, &answer)
	if err != nil {
		return "", 0, err
	}
	if answer.AccessToken == "" {
		return "", 0, fmt.Errorf("GET %s: answer has no access_token", path)
	}
	return answer.AccessToken, appTokenTTL(answer.ExpiresIn), nil
}

// appTokenTTL is how long to keep a token DingTalk says lives expiresIn seconds:
// appTokenMargin less, but at least half of it (a fake's short-lived tokens).
func appTokenTTL(expiresIn int64) time.Duration {
	life := time.Duration(expiresIn) * time.Second
	if life <= 0 {
		return appTokenUnknownTTL
	}
	return max(life-appTokenMargin, life/2)
}

// callTopAPI POSTs in to an oapi topapi with the app access token and decodes the
// answer into out. When DingTalk says the token is invalid or expired (40014, 42001,
// also as the gateway's sub_code), it drops the token, fetches a new one and tries
// once more: a refused token is checked before anything else, so a login code in the
// request is still unused.
func (c *Client) callTopAPI(ctx context.Context, api, path, permission string, in, out any, sensitive ...string) error {
	for retried := false; ; retried = true {
		token, err := c.appAccessToken(ctx)
		if err != nil {
			return err
		}
		err = c.callOAPI(ctx, oapiRequest{
			api:        api,
			method:     http.MethodPost,
			path:       path,
			query:      func() url.Values { return url.Values{"access_token": {token}} },
			body:       in,
			permission: permission,
			sensitive:  sensitive,
		}, out)
		if retried || !appTokenRejected(err) {
			return err
		}
		c.dropAppToken(token)
	}
}
