package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// refuseStatic answers an attempt to change a client from the configuration file.
func (s *Service) refuseStatic(id, verb string) error {
	if _, ok := s.conf().static[id]; ok {
		return refuse(ErrStaticClient, "client %q is a static client: it is defined in the configuration file's staticClients and cannot be %s here; change it there and restart dingbridge", id, verb)
	}
	return nil
}

// UpdateClient applies u atomically.
func (s *Service) UpdateClient(ctx context.Context, id string, u ClientUpdate) (Client, error) {
	if err := s.refuseStatic(id, "updated"); err != nil {
		return Client{}, err
	}
	if u.IsEmpty() {
		return Client{}, refuse(ErrInvalid, "nothing to change: give at least one of the update flags")
	}
	var updated storage.Client
	now := s.conf().Now().UTC()
	err := s.conf().Storage.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		next, err := s.apply(c, u, now)
		updated = next
		return next, err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return Client{}, clientNotFound(id)
	}
	var refusal *Error
	if errors.As(err, &refusal) {
		return Client{}, refusal
	}
	if err != nil {
		return Client{}, fmt.Errorf("update client %q: %w", id, err)
	}
	return viewClient(updated), nil
}

// apply is a pure function of its arguments: storage may call it more than once.
func (s *Service) apply(c storage.Client, u ClientUpdate, now time.Time) (storage.Client, error) {
	var err error
	if u.Name != nil {
		if strings.TrimSpace(*u.Name) == "" {
			return c, refuse(ErrInvalid, "the client's name cannot be empty")
		}
		c.Name = *u.Name
	}
	if c.RedirectURIs, err = edit("redirect URI", c.RedirectURIs, u.AddRedirectURIs, u.RemoveRedirectURIs); err != nil {
		return c, err
	}
	if len(c.RedirectURIs) == 0 {
		return c, refuse(ErrInvalid, "that would remove every redirect URI of client %q: add another in the same update", c.ID)
	}
	if c.PostLogoutRedirectURIs, err = edit("post-logout redirect URI", c.PostLogoutRedirectURIs, u.AddPostLogoutRedirectURIs, u.RemovePostLogoutRedirectURIs); err != nil {
		return c, err
	}
	if err := checkURIs(u.AddRedirectURIs, u.AddPostLogoutRedirectURIs, c.Public); err != nil {
		return c, err
	}
	if u.IDTokenLifetime != nil {
		if err := checkLifetime("id-token-lifetime", *u.IDTokenLifetime, s.conf().MaxTokenLifetime); err != nil {
			return c, err
		}
		c.IDTokenLifetime = time.Duration(*u.IDTokenLifetime)
	}
	if u.AccessTokenLifetime != nil {
		if err := checkLifetime("access-token-lifetime", *u.AccessTokenLifetime, s.conf().MaxTokenLifetime); err != nil {
			return c, err
		}
		c.AccessTokenLifetime = time.Duration(*u.AccessTokenLifetime)
	}
	c.UpdatedAt = now
	return c, nil
}

// edit returns list without remove and with add (each once), refusing to remove
// what is not there: a typo must not pass for a change.
func edit(what string, list, add, remove []string) ([]string, error) {
	out := slices.Clone(list)
	for _, r := range remove {
		i := slices.Index(out, r)
		if i < 0 {
			return nil, refuse(ErrInvalid, "cannot remove %s %q: the client does not have it", what, r)
		}
		out = slices.Delete(out, i, i+1)
	}
	for _, a := range add {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// DeleteClient removes a registered client. Its tokens stay in storage until they
// expire, but the provider refuses every one of them: each use looks the client up.
func (s *Service) DeleteClient(ctx context.Context, id string) error {
	if err := s.refuseStatic(id, "deleted"); err != nil {
		return err
	}
	err := s.conf().Storage.DeleteClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return clientNotFound(id)
	}
	if err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	// A client registered later under this ID must not inherit the old tokens.
	if err := s.conf().Storage.RevokeClient(ctx, id); err != nil {
		return fmt.Errorf("revoke tokens of client %q: %w", id, err)
	}
	return nil
}

// RotateClientSecret gives a confidential client a new secret; the old one
// fails at once (the provider reads the stored hash on every authentication).
func (s *Service) RotateClientSecret(ctx context.Context, id string) (ClientWithSecret, error) {
	if err := s.refuseStatic(id, "given a new secret"); err != nil {
		return ClientWithSecret{}, err
	}
	secret, hash, err := s.newSecret(ctx)
	if err != nil {
		return ClientWithSecret{}, err
	}
	var updated storage.Client
	now := s.conf().Now().UTC()
	err = s.conf().Storage.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		if c.Public {
			return c, refuse(ErrInvalid, "client %q is public: it has no secret to rotate", id)
		}
		c.SecretHash, c.UpdatedAt = hash, now
		updated = c
		return c, nil
	})
	var refusal *Error
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return ClientWithSecret{}, clientNotFound(id)
	case errors.As(err, &refusal):
		return ClientWithSecret{}, refusal
	case err != nil:
		return ClientWithSecret{}, fmt.Errorf("rotate secret of client %q: %w", id, err)
	}
	return ClientWithSecret{Client: viewClient(updated), Secret: secret}, nil
}
