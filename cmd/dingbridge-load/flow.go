package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"time"
)

// client is one relying party and the browsers of the people it logs in: one
// shared transport (keep-alive), a new cookie jar for every login so that no
// SSO session makes a login cheaper than a first one.
type client struct {
	is          *issuer
	transport   http.RoundTripper
	timeout     time.Duration
	clientID    string
	secret      string
	redirectURI *url.URL
	scopes      string
	// allowedHosts are where a login may be redirected: the issuer's host and the
	// fake DingTalk's. Anything else is refused before a request is sent.
	allowedHosts []string
}

// tokens is a token endpoint's answer.
type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// login runs one whole authorization code flow with PKCE as a browser and a
// relying party would: the authorize URL, every redirect (the provider's login
// step, the upstream, the callback) until the redirect URI gets a code, then the
// code exchange. The id_token is verified; subject is its sub.
func (c *client) login(ctx context.Context) (t tokens, subject string, err error) {
	state, nonce, verifier := rand.Text(), rand.Text(), rand.Text()+rand.Text()
	challenge := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.clientID},
		"redirect_uri":          {c.redirectURI.String()},
		"scope":                 {c.scopes},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	sep := "?"
	if strings.Contains(c.is.authorizationEndpoint, "?") {
		sep = "&"
	}
	back, err := c.browse(ctx, c.is.authorizationEndpoint+sep+q.Encode())
	if err != nil {
		return t, "", err
	}
	if e := back.Get("error"); e != "" {
		return t, "", fmt.Errorf("redirect URI got error %q", e)
	}
	if back.Get("state") != state {
		return t, "", errors.New("redirect URI got a different state")
	}
	code := back.Get("code")
	if code == "" {
		return t, "", errors.New("redirect URI got no code")
	}
	t, err = c.token(ctx, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.redirectURI.String()},
		"code_verifier": {verifier},
	})
	if err != nil {
		return t, "", fmt.Errorf("code exchange: %w", err)
	}
	subject, err = c.is.verifyIDToken(t.IDToken, c.clientID, nonce, time.Now())
	return t, subject, err
}

// browse follows redirects from startURL with a fresh cookie jar until one goes
// to the redirect URI, and returns that redirect's query.
func (c *client) browse(ctx context.Context, startURL string) (url.Values, error) {
	jar, _ := cookiejar.New(nil)
	var back *url.URL
	browser := &http.Client{
		Transport: c.transport,
		Jar:       jar,
		Timeout:   c.timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if c.isRedirectURI(req.URL) {
				back = req.URL
				return http.ErrUseLastResponse
			}
			if !slices.Contains(c.allowedHosts, req.URL.Host) {
				return fmt.Errorf("refused a redirect to %s://%s%s: neither the issuer nor the fake DingTalk",
					req.URL.Scheme, req.URL.Host, req.URL.Path)
			}
			if len(via) >= 20 {
				return errors.New("more than 20 redirects")
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, startURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := browser.Do(req)
	if err != nil {
		return nil, withoutQuery(err)
	}
	drain(resp)
	if back != nil {
		return back.Query(), nil
	}
	return nil, fmt.Errorf("login stopped at %s (HTTP %d) before reaching the redirect URI: does the upstream approve by itself?",
		resp.Request.URL.Path, resp.StatusCode)
}

func (c *client) isRedirectURI(u *url.URL) bool {
	return u.Scheme == c.redirectURI.Scheme && u.Host == c.redirectURI.Host && u.Path == c.redirectURI.Path
}

// refresh redeems a refresh token; the answer's refresh token (rotated, or the
// same one) is the next to use.
func (c *client) refresh(ctx context.Context, refreshToken string) (tokens, error) {
	t, err := c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
	if err != nil {
		return t, fmt.Errorf("refresh: %w", err)
	}
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

// token posts a grant to the token endpoint, authenticating with client_secret_basic.
func (c *client) token(ctx context.Context, form url.Values) (tokens, error) {
	var t tokens
	if c.secret == "" {
		form.Set("client_id", c.clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.is.tokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return t, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
	}
	resp, err := c.do(req)
	if err != nil {
		return t, err
	}
	defer drain(resp)
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil {
		return t, fmt.Errorf("HTTP %d, undecodable answer: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || t.Error != "" {
		return t, fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, t.Error, t.Description)
	}
	if t.AccessToken == "" {
		return t, errors.New("answer has no access_token")
	}
	return t, nil
}

// userinfo reads the userinfo endpoint with an access token and checks it is
// about subject.
func (c *client) userinfo(ctx context.Context, accessToken, subject string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.is.userinfoEndpoint, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("userinfo: HTTP %d", resp.StatusCode)
	}
	var claims struct {
		Subject string `json:"sub"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&claims); err != nil {
		return fmt.Errorf("userinfo: %w", err)
	}
	if claims.Subject != subject {
		return errors.New("userinfo: sub is not the id_token's")
	}
	return nil
}

func (c *client) do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), c.timeout)
	resp, err := c.transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, withoutQuery(err)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// drain reads what is left of a body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// withoutQuery keeps codes and states, which travel in URLs, out of error messages.
func withoutQuery(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		u, perr := url.Parse(urlErr.URL)
		if perr == nil {
			u.RawQuery, u.Fragment = "", ""
			return fmt.Errorf("%s %s: %w", urlErr.Op, u.Redacted(), urlErr.Err)
		}
		return urlErr.Err
	}
	return err
}
