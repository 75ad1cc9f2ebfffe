package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/op"
	"github.com/dingbridge/dingbridge/storage"
)

// AddClient registers spec, generating its ID when spec has none.
func (s *Service) AddClient(ctx context.Context, spec ClientSpec) (ClientWithSecret, error) {
	if spec.ID == "" {
		spec.ID = strings.ToLower(rand.Text())
	}
	grants, err := s.checkSpec(spec)
	if err != nil {
		return ClientWithSecret{}, err
	}
	if _, ok := s.conf().static[spec.ID]; ok {
		return ClientWithSecret{}, refuse(ErrConflict, "client %q already exists: it is defined in the configuration file's staticClients", spec.ID)
	}
	now := s.conf().Now().UTC()
	c := storage.Client{
		ID: spec.ID, Name: spec.Name, Public: spec.Public,
		RedirectURIs:           slices.Clone(spec.RedirectURIs),
		PostLogoutRedirectURIs: slices.Clone(spec.PostLogoutRedirectURIs),
		GrantTypes:             grants, Scopes: slices.Clone(spec.Scopes),
		RequirePKCE: spec.RequirePKCE, RequireConsent: spec.RequireConsent,
		BackchannelLogoutURI: spec.BackchannelLogoutURI,
		IDTokenLifetime:      time.Duration(spec.IDTokenLifetime),
		AccessTokenLifetime:  time.Duration(spec.AccessTokenLifetime),
		CreatedAt:            now, UpdatedAt: now,
	}
	var secret string
	if !spec.Public {
		var err error
		if secret, c.SecretHash, err = s.newSecret(ctx); err != nil {
			return ClientWithSecret{}, err
		}
	}
	err = s.conf().Storage.CreateClient(ctx, c)
	if errors.Is(err, storage.ErrAlreadyExists) {
		return ClientWithSecret{}, refuse(ErrConflict, "client %q already exists: pick another --id, or change it with `client update`", spec.ID)
	}
	if err != nil {
		return ClientWithSecret{}, fmt.Errorf("add client %q: %w", spec.ID, err)
	}
	return ClientWithSecret{Client: viewClient(c), Secret: secret}, nil
}

// checkSpec refuses what would not work and returns the normalised grant types.
func (s *Service) checkSpec(spec ClientSpec) ([]string, error) {
	if err := checkClientID(spec.ID); err != nil {
		return nil, err
	}
	if strings.TrimSpace(spec.Name) == "" {
		return nil, refuse(ErrInvalid, "the client needs a name (--name): people see it when they log in")
	}
	grants, err := parseGrantTypes(spec.GrantTypes)
	if err != nil {
		return nil, err
	}
	if len(spec.RedirectURIs) == 0 && redirectsBrowsers(grants) {
		return nil, refuse(ErrInvalid, "the client needs at least one redirect URI (--redirect-uri), or only the device_code grant (--grant-types device_code)")
	}
	if err := checkURIs(spec.RedirectURIs, spec.PostLogoutRedirectURIs, spec.Public); err != nil {
		return nil, err
	}
	if spec.BackchannelLogoutURI != "" {
		if err := checkURIs([]string{spec.BackchannelLogoutURI}, nil, false); err != nil {
			return nil, err
		}
	}
	if err := checkScopes(spec.Scopes); err != nil {
		return nil, err
	}
	if err := checkLifetime("id-token-lifetime", spec.IDTokenLifetime, s.conf().MaxTokenLifetime); err != nil {
		return nil, err
	}
	return grants, checkLifetime("access-token-lifetime", spec.AccessTokenLifetime, s.conf().MaxTokenLifetime)
}

func checkURIs(redirect, postLogout []string, public bool) error {
	for _, u := range redirect {
		if err := checkRedirectURI("redirect URI", u, public); err != nil {
			return err
		}
	}
	for _, u := range postLogout {
		if err := checkRedirectURI("post-logout redirect URI", u, public); err != nil {
			return err
		}
	}
	return nil
}

// newSecret returns a client secret (32 random bytes) and the form it is stored
// in: the HMAC the provider verifies it with (op.HashClientSecret). A secret
// nobody chose needs no slow hash; see op/clientauth.go.
func (s *Service) newSecret(ctx context.Context) (secret, hash string, err error) {
	tokenKey, err := s.conf().Keys.TokenKey(ctx)
	if err != nil {
		return "", "", fmt.Errorf("hash client secret: %w", err)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never returns an error
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, op.HashClientSecret(op.ClientSecretKey(tokenKey), secret), nil
}

// ListClients lists static clients and registered ones, by ID.
func (s *Service) ListClients(ctx context.Context) ([]Client, error) {
	stored, err := s.conf().Storage.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out := make([]Client, 0, len(stored)+len(s.conf().static))
	for _, c := range s.conf().static {
		out = append(out, viewStatic(c))
	}
	for _, c := range stored {
		if _, shadowed := s.conf().static[c.ID]; !shadowed {
			out = append(out, viewClient(c))
		}
	}
	slices.SortFunc(out, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// GetClient returns one client; static clients win, as they do in the provider.
func (s *Service) GetClient(ctx context.Context, id string) (Client, error) {
	if c, ok := s.conf().static[id]; ok {
		return viewStatic(c), nil
	}
	c, err := s.storedClient(ctx, id)
	if err != nil {
		return Client{}, err
	}
	return viewClient(c), nil
}

func (s *Service) storedClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := s.conf().Storage.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return c, clientNotFound(id)
	}
	if err != nil {
		return c, fmt.Errorf("get client %q: %w", id, err)
	}
	return c, nil
}

func clientNotFound(id string) error {
	return refuse(ErrNotFound, "client %q not found: `dingbridge client list` shows the clients", id)
}

func viewClient(c storage.Client) Client {
	return Client{
		ID: c.ID, Name: c.Name, Public: c.Public,
		RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, Scopes: c.Scopes,
		RequirePKCE: c.RequirePKCE, RequireConsent: c.RequireConsent, BackchannelLogoutURI: c.BackchannelLogoutURI,
		IDTokenLifetime: Duration(c.IDTokenLifetime), AccessTokenLifetime: Duration(c.AccessTokenLifetime),
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

func viewStatic(c op.StaticClient) Client {
	name := c.Name
	if name == "" {
		name = c.ID
	}
	return Client{
		ID: c.ID, Name: name, Static: true, Public: c.Public,
		RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, RequirePKCE: c.RequirePKCE, RequireConsent: c.RequireConsent,
		BackchannelLogoutURI: c.BackchannelLogoutURI,
	}
}
