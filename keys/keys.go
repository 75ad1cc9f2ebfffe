// Package keys owns the provider's key material: the asymmetric keys that sign
// id_tokens (published as JWKS) and the symmetric key that seals opaque access
// tokens and codes. Private keys live only in storage; this package keeps a parsed
// copy in memory because parsing a key for every signature would cost more than the
// signature.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/dingbridge/dingbridge/storage"
)

// Store is the part of storage.Storage this package needs.
type Store interface {
	GetKeySet(ctx context.Context) (storage.KeySet, error)
	UpdateKeySet(ctx context.Context, update func(storage.KeySet) (storage.KeySet, error)) error
}

// Options configures a Manager.
type Options struct {
	// Algorithm of newly generated signing keys: RS256 (default) or ES256.
	Algorithm jose.SignatureAlgorithm
	// ReloadInterval bounds how long a change made by another process (a rotation
	// through the admin CLI, another replica) takes to be seen. Default 30s.
	ReloadInterval time.Duration
	// RotationPeriod is how long a key signs before Advance replaces it; 0 never.
	RotationPeriod time.Duration
	// PublishAhead is how long a next key is in the JWKS before it signs, so every
	// relying party's cached JWKS has it by then. Default 24h.
	PublishAhead time.Duration
	// RetainFor is how long a retired key stays published: at least the lifetime of
	// the longest-lived token it signed (the id_token's). Default 24h.
	RetainFor time.Duration
	// Propagation is how long a change to the stored key set may take to reach
	// every process serving from the store: their ReloadInterval, with a margin.
	// A new key is published at least this long before it signs, so no
	// replica's JWKS lacks a key that another replica signs with. Zero, for a
	// store no other process serves from: Rotate's new key signs at once.
	Propagation time.Duration
	// Now is the clock; tests set it.
	Now func() time.Time
}

// SigningKey is a key that may sign now.
type SigningKey struct {
	ID        string
	Algorithm jose.SignatureAlgorithm
	Private   crypto.Signer
}

// Manager hands out the current keys, generating them on first use.
type Manager struct {
	store Store
	opts  Options

	mu       sync.Mutex
	loaded   *material
	loadedAt time.Time
}

// material is one parsed KeySet. Which key signs is decided at each use, not at
// parse time: a next key takes over when its NotBefore passes, with no change in
// storage to trigger a reload.
type material struct {
	version  uint64
	keys     []storage.SigningKey // published (not expired) at parse time
	signers  map[string]crypto.Signer
	public   []jose.JSONWebKey
	tokenKey [32]byte
}

// New returns a Manager over store. Call Ensure once at start-up.
func New(store Store, opts Options) (*Manager, error) {
	if opts.Algorithm == "" {
		opts.Algorithm = jose.RS256
	}
	if opts.Algorithm != jose.RS256 && opts.Algorithm != jose.ES256 {
		return nil, fmt.Errorf("keys: algorithm %s is not supported: use RS256 or ES256", opts.Algorithm)
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = 30 * time.Second
	}
	if opts.PublishAhead <= 0 {
		opts.PublishAhead = 24 * time.Hour
	}
	if opts.RetainFor <= 0 {
		opts.RetainFor = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{store: store, opts: opts}, nil
}

// Ensure makes sure storage holds a signing key and a token key, generating what is
// missing. Safe to call from several processes at once: the update is atomic, so
// only one generated key survives.
func (m *Manager) Ensure(ctx context.Context) error {
	err := m.store.UpdateKeySet(ctx, func(ks storage.KeySet) (storage.KeySet, error) {
		changed := false
		if len(ks.TokenKey) != 32 {
			ks.TokenKey = make([]byte, 32)
			if _, err := rand.Read(ks.TokenKey); err != nil {
				return ks, err
			}
			changed = true
		}
		if active(ks.SigningKeys, m.opts.Now()) == nil {
			k, err := generate(m.opts.Algorithm, m.opts.Now())
			if err != nil {
				return ks, err
			}
			ks.SigningKeys = append(ks.SigningKeys, k)
			changed = true
		}
		if changed {
			ks.Version++
		}
		return ks, nil
	})
	if err != nil {
		return fmt.Errorf("keys: ensure key material: %w", err)
	}
	_, err = m.reload(ctx)
	return err
}

// Rotate makes a new key the one that signs: at once, or with Propagation
// after every replica publishes it. The key it replaces is retired when the new
// one takes over: it stays in the JWKS for RetainFor, so every token it signed
// still verifies, and is dropped after. Keys whose time is up are pruned here too.
func (m *Manager) Rotate(ctx context.Context) (SigningKeyInfo, error) {
	now := m.opts.Now().UTC()
	var fresh storage.SigningKey
	err := m.store.UpdateKeySet(ctx, func(ks storage.KeySet) (storage.KeySet, error) {
		k, err := generate(m.opts.Algorithm, now)
		if err != nil {
			return ks, err
		}
		k.NotBefore = now.Add(m.opts.Propagation)
		fresh = k
		kept := ks.SigningKeys[:0:0]
		for _, old := range ks.SigningKeys {
			if !old.Expiry.IsZero() && !now.Before(old.Expiry) {
				continue
			}
			// With Propagation the old key signs until the new one's NotBefore;
			// Advance retires it then, as it does a key the schedule replaced.
			if old.RetiredAt.IsZero() && m.opts.Propagation == 0 {
				old.RetiredAt, old.Expiry = now, now.Add(m.opts.RetainFor)
			}
			kept = append(kept, old)
		}
		ks.SigningKeys = append(kept, k)
		ks.Version++
		return ks, nil
	})
	if err != nil {
		return SigningKeyInfo{}, fmt.Errorf("keys: rotate: %w", err)
	}
	if _, err := m.reload(ctx); err != nil {
		return SigningKeyInfo{}, err
	}
	signingID := ""
	if !now.Before(fresh.NotBefore) {
		signingID = fresh.ID
	}
	return info(fresh, signingID, now), nil
}

// Advance does what the schedule asks, atomically, so several processes sharing
// one store never rotate twice: it publishes a next key PublishAhead before the
// active one's RotationPeriod ends, retires keys a newer one has replaced (kept
// for RetainFor), and drops retired keys whose time is up. It reports whether
// anything changed. Call it periodically (see Run).
func (m *Manager) Advance(ctx context.Context) (bool, error) {
	now := m.opts.Now().UTC()
	changed := false
	err := m.store.UpdateKeySet(ctx, func(ks storage.KeySet) (storage.KeySet, error) {
		changed = false
		signing := active(ks.SigningKeys, now)
		if signing == nil {
			return ks, errors.New("no active key: run Ensure")
		}
		signingID, signingSince := signing.ID, signing.NotBefore
		keys := make([]storage.SigningKey, 0, len(ks.SigningKeys)+1)
		hasNext := false
		for _, k := range ks.SigningKeys {
			switch {
			case !k.Expiry.IsZero() && !now.Before(k.Expiry):
				changed = true
				continue // every token it signed has expired
			case k.ID == signingID:
			case now.Before(k.NotBefore):
				hasNext = true
			case k.RetiredAt.IsZero():
				// Superseded: the active key took over at its NotBefore.
				k.RetiredAt, k.Expiry = signingSince, signingSince.Add(m.opts.RetainFor)
				changed = true
			}
			keys = append(keys, k)
		}
		due := signingSince.Add(m.opts.RotationPeriod)
		if m.opts.RotationPeriod > 0 && !hasNext && !now.Before(due.Add(-m.opts.PublishAhead)) {
			next, err := generate(m.opts.Algorithm, now)
			if err != nil {
				return ks, err
			}
			next.NotBefore = due
			if earliest := now.Add(max(m.opts.PublishAhead, m.opts.Propagation)); due.Before(earliest) {
				next.NotBefore = earliest // never sign with a key RPs may not have yet
			}
			keys = append(keys, next)
			changed = true
		}
		if changed {
			ks.SigningKeys = keys
			ks.Version++
		}
		return ks, nil
	})
	if err != nil {
		return false, fmt.Errorf("keys: advance: %w", err)
	}
	if changed {
		_, err = m.reload(ctx)
	}
	return changed, err
}

// Run calls Advance every interval until ctx is done, reporting errors to onError.
func (m *Manager) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := m.Advance(ctx); err != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// JWKSMaxAge is how long a relying party may cache the JWKS and still meet every
// scheduled key before it signs.
func (m *Manager) JWKSMaxAge() time.Duration {
	return min(m.opts.PublishAhead/4, time.Hour)
}

// SigningKeyInfo describes a stored key without its private half.
type SigningKeyInfo struct {
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	CreatedAt time.Time `json:"created"`
	// State is "active" (signs), "next" (published, signs from NotBefore) or
	// "retired" (verifies only, published until Expiry).
	State     string    `json:"state"`
	NotBefore time.Time `json:"notBefore"`
	Expiry    time.Time `json:"expiry,omitzero"`
}

// List describes every stored signing key, oldest first.
func (m *Manager) List(ctx context.Context) ([]SigningKeyInfo, error) {
	ks, err := m.store.GetKeySet(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	now := m.opts.Now()
	signingID := ""
	if k := active(ks.SigningKeys, now); k != nil {
		signingID = k.ID
	}
	out := make([]SigningKeyInfo, 0, len(ks.SigningKeys))
	for _, k := range ks.SigningKeys {
		out = append(out, info(k, signingID, now))
	}
	slices.SortFunc(out, func(a, b SigningKeyInfo) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func info(k storage.SigningKey, signingID string, now time.Time) SigningKeyInfo {
	i := SigningKeyInfo{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, NotBefore: k.NotBefore, Expiry: k.Expiry, State: "retired"}
	switch {
	case k.ID == signingID:
		i.State = "active"
	case now.Before(k.NotBefore):
		i.State = "next"
	}
	return i
}

// SigningKey returns the key that signs now.
func (m *Manager) SigningKey(ctx context.Context) (SigningKey, error) {
	mat, err := m.current(ctx)
	if err != nil {
		return SigningKey{}, err
	}
	k := active(mat.keys, m.opts.Now())
	if k == nil {
		return SigningKey{}, errors.New("keys: no key may sign now: run Ensure")
	}
	return SigningKey{ID: k.ID, Algorithm: jose.SignatureAlgorithm(k.Algorithm), Private: mat.signers[k.ID]}, nil
}

// PublicKeys returns every key a verifier may meet: the one that signs and the ones
// published before or after it.
func (m *Manager) PublicKeys(ctx context.Context) ([]jose.JSONWebKey, error) {
	mat, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	return mat.public, nil
}

// TokenKey returns the 32-byte key that seals opaque tokens and codes.
func (m *Manager) TokenKey(ctx context.Context) ([32]byte, error) {
	mat, err := m.current(ctx)
	if err != nil {
		return [32]byte{}, err
	}
	return mat.tokenKey, nil
}

func (m *Manager) current(ctx context.Context) (*material, error) {
	m.mu.Lock()
	mat, fresh := m.loaded, m.opts.Now().Sub(m.loadedAt) < m.opts.ReloadInterval
	m.mu.Unlock()
	if mat != nil && fresh {
		return mat, nil
	}
	return m.reload(ctx)
}

func (m *Manager) reload(ctx context.Context) (*material, error) {
	ks, err := m.store.GetKeySet(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: load key set: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded != nil && m.loaded.version == ks.Version {
		m.loadedAt = m.opts.Now()
		return m.loaded, nil
	}
	mat, err := parse(ks, m.opts.Now())
	if err != nil {
		return nil, err
	}
	m.loaded, m.loadedAt = mat, m.opts.Now()
	return mat, nil
}

func parse(ks storage.KeySet, now time.Time) (*material, error) {
	if len(ks.TokenKey) != 32 {
		return nil, errors.New("keys: no token key in storage: run Ensure first")
	}
	mat := &material{version: ks.Version, signers: make(map[string]crypto.Signer)}
	copy(mat.tokenKey[:], ks.TokenKey)
	if active(ks.SigningKeys, now) == nil {
		return nil, errors.New("keys: no signing key in storage: run Ensure first")
	}
	for _, k := range ks.SigningKeys {
		if !k.Expiry.IsZero() && !now.Before(k.Expiry) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.PrivateJWK, &jwk); err != nil {
			return nil, fmt.Errorf("keys: decode key %s: %w", k.ID, err)
		}
		signer, ok := jwk.Key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("keys: key %s is not a private key", k.ID)
		}
		if rsaKey, ok := signer.(*rsa.PrivateKey); ok {
			// Without this, every signature re-validates the key (~0.15 ms).
			rsaKey.Precompute()
		}
		mat.public = append(mat.public, jose.JSONWebKey{
			Key: signer.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig",
		})
		mat.keys = append(mat.keys, k)
		mat.signers[k.ID] = signer
	}
	return mat, nil
}

// active returns the key that signs at now: not retired, past NotBefore; the newest
// such key wins so a freshly promoted key takes over at once.
func active(keys []storage.SigningKey, now time.Time) *storage.SigningKey {
	var best *storage.SigningKey
	for i := range keys {
		k := &keys[i]
		if !k.RetiredAt.IsZero() || now.Before(k.NotBefore) {
			continue
		}
		if best == nil || k.NotBefore.After(best.NotBefore) {
			best = k
		}
	}
	return best
}

func generate(alg jose.SignatureAlgorithm, now time.Time) (storage.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
	pub := jwk.Public()
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	raw, err := json.Marshal(jwk)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("encode key: %w", err)
	}
	now = now.UTC()
	return storage.SigningKey{
		ID: jwk.KeyID, Algorithm: string(alg), PrivateJWK: raw, CreatedAt: now, NotBefore: now,
	}, nil
}
