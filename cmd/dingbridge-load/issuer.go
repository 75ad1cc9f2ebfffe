package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// target is the provider under load and how to reach it as a client.
type target struct {
	issuer   string
	clientID string
	secret   string
	pid      int // the provider's process, when its CPU and memory are measured; 0: not
	// extraHosts are hosts besides the issuer's that a login may be redirected
	// through: the fake DingTalk this command started.
	extraHosts []string
	// upstreamConns counts the connections the fake DingTalk accepted, when
	// this command started it.
	upstreamConns *atomic.Int64
}

// issuer is what the load needs of the provider: its endpoints, read once from
// discovery, and its keys, fetched once from the JWKS.
type issuer struct {
	url                   string
	authorizationEndpoint string
	tokenEndpoint         string
	userinfoEndpoint      string
	keys                  jose.JSONWebKeySet
	algorithms            []jose.SignatureAlgorithm
}

// discover reads the discovery document and the JWKS. Every endpoint must be on
// the issuer's host: the load goes nowhere else.
func discover(ctx context.Context, client *http.Client, issuerURL string) (*issuer, error) {
	base, err := url.Parse(issuerURL)
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("issuer %q is not an absolute http(s) URL", issuerURL)
	}
	var doc struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		UserinfoEndpoint      string   `json:"userinfo_endpoint"`
		JWKSURI               string   `json:"jwks_uri"`
		SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	}
	discovery := strings.TrimSuffix(issuerURL, "/") + "/.well-known/openid-configuration"
	if err := getJSON(ctx, client, discovery, &doc); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != issuerURL {
		return nil, fmt.Errorf("discovery: issuer is %q, not %q", doc.Issuer, issuerURL)
	}
	for name, endpoint := range map[string]string{"authorization_endpoint": doc.AuthorizationEndpoint,
		"token_endpoint": doc.TokenEndpoint, "jwks_uri": doc.JWKSURI, "userinfo_endpoint": doc.UserinfoEndpoint} {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host != base.Host || u.Scheme != base.Scheme {
			return nil, fmt.Errorf("discovery: %s %q is not on the issuer's host %s", name, endpoint, base.Host)
		}
	}
	is := &issuer{url: issuerURL, authorizationEndpoint: doc.AuthorizationEndpoint,
		tokenEndpoint: doc.TokenEndpoint, userinfoEndpoint: doc.UserinfoEndpoint}
	for _, alg := range doc.SigningAlgs {
		if alg != "none" && !strings.HasPrefix(alg, "HS") {
			is.algorithms = append(is.algorithms, jose.SignatureAlgorithm(alg))
		}
	}
	if len(is.algorithms) == 0 {
		is.algorithms = []jose.SignatureAlgorithm{jose.RS256}
	}
	if err := getJSON(ctx, client, doc.JWKSURI, &is.keys); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if len(is.keys.Keys) == 0 {
		return nil, errors.New("jwks: no keys")
	}
	return is, nil
}

func getJSON(ctx context.Context, client *http.Client, rawURL string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", rawURL, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", rawURL, err)
	}
	return nil
}

// idClaims are the id_token claims the load checks.
type idClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience audience `json:"aud"`
	Expiry   int64    `json:"exp"`
	Nonce    string   `json:"nonce"`
}

// audience is "aud": one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// verifyIDToken checks what a relying party must (OIDC Core §3.1.3.7): the
// signature by a key of the JWKS, iss, aud, exp and, when given, the nonce. It
// returns the subject.
func (is *issuer) verifyIDToken(raw, clientID, nonce string, now time.Time) (string, error) {
	if raw == "" {
		return "", errors.New("token response has no id_token")
	}
	jws, err := jose.ParseSigned(raw, is.algorithms)
	if err != nil {
		return "", fmt.Errorf("id_token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return "", errors.New("id_token: not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := is.keys.Key(kid)
	if len(keys) == 0 {
		return "", fmt.Errorf("id_token: key %q is not in the JWKS fetched at the start", kid)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return "", fmt.Errorf("id_token: %w", err)
	}
	var c idClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("id_token claims: %w", err)
	}
	switch {
	case c.Issuer != is.url:
		return "", fmt.Errorf("id_token: iss %q is not the issuer", c.Issuer)
	case !slices.Contains(c.Audience, clientID):
		return "", fmt.Errorf("id_token: aud %q does not contain the client", c.Audience)
	case c.Expiry <= now.Unix():
		return "", errors.New("id_token: expired")
	case nonce != "" && c.Nonce != nonce:
		return "", errors.New("id_token: nonce does not match")
	case c.Subject == "":
		return "", errors.New("id_token: no sub")
	}
	return c.Subject, nil
}
