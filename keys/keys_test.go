package keys_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
)

func openStore(t *testing.T) *bolt.Storage {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "keys.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFirstStartGeneratesAnRS256KeyThatSigns(t *testing.T) {
	store := openStore(t)
	m, err := keys.New(store, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := m.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k.Algorithm != jose.RS256 || k.ID == "" {
		t.Fatalf("signing key %s %q, want RS256 with a kid", k.Algorithm, k.ID)
	}
	pub, err := m.PublicKeys(ctx)
	if err != nil || len(pub) != 1 || pub[0].KeyID != k.ID || !pub[0].IsPublic() || pub[0].Use != "sig" {
		t.Fatalf("JWKS = %+v, %v; want the one public key with its kid", pub, err)
	}
	// The published key verifies what the private key signs.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.Private}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(pub[0]); err != nil {
		t.Fatalf("JWKS key does not verify the signing key's signature: %v", err)
	}
	ks, _ := store.GetKeySet(ctx)
	if len(ks.TokenKey) != 32 {
		t.Errorf("token key has %d bytes, want 32", len(ks.TokenKey))
	}
}

func TestRestartKeepsTheSameKeys(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	first, _ := keys.New(store, keys.Options{})
	if err := first.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	second, _ := keys.New(store, keys.Options{})
	if err := second.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ := first.SigningKey(ctx)
	b, _ := second.SigningKey(ctx)
	ta, _ := first.TokenKey(ctx)
	tb, _ := second.TokenKey(ctx)
	if a.ID != b.ID || ta != tb {
		t.Fatalf("a second start made new keys: kid %s → %s", a.ID, b.ID)
	}
}

// Several processes starting at once against one store keep exactly one key.
func TestConcurrentFirstStartsKeepOneKey(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			m, _ := keys.New(store, keys.Options{Algorithm: jose.ES256})
			if err := m.Ensure(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ks, _ := store.GetKeySet(ctx)
	if len(ks.SigningKeys) != 1 {
		t.Fatalf("%d signing keys after concurrent starts, want 1", len(ks.SigningKeys))
	}
}

// A key rotated in by another process is picked up within the reload interval.
func TestKeysChangedElsewhereAreSeenAfterReloadInterval(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m, _ := keys.New(store, keys.Options{ReloadInterval: time.Minute, Now: func() time.Time { return now }})
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	old, _ := m.SigningKey(ctx)
	// Another process retires the key and adds a new one.
	other, _ := keys.New(store, keys.Options{Now: func() time.Time { return now }})
	err := store.UpdateKeySet(ctx, func(ks storage.KeySet) (storage.KeySet, error) {
		for i := range ks.SigningKeys {
			ks.SigningKeys[i].RetiredAt = now
		}
		ks.Version++
		return ks, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := m.SigningKey(ctx); k.ID != old.ID {
		t.Fatal("reloaded before the interval")
	}
	now = now.Add(2 * time.Minute)
	k, err := m.SigningKey(ctx)
	if err != nil || k.ID == old.ID {
		t.Fatalf("after the interval: kid %s, err %v; want the new key", k.ID, err)
	}
	pub, _ := m.PublicKeys(ctx)
	if len(pub) != 2 {
		t.Errorf("JWKS has %d keys, want the retired and the new one", len(pub))
	}
}

func TestUnsupportedAlgorithmIsRefused(t *testing.T) {
	if _, err := keys.New(openStore(t), keys.Options{Algorithm: jose.HS256}); err == nil {
		t.Fatal("HS256 accepted for signing keys")
	}
}

func TestRotateKeepsTheOldKeyPublishedUntilItsTokensExpire(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m, _ := keys.New(store, keys.Options{RetainFor: time.Hour, Now: func() time.Time { return now }})
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	old, _ := m.SigningKey(ctx)
	fresh, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := m.SigningKey(ctx); k.ID != fresh.ID || k.ID == old.ID {
		t.Fatalf("after rotate the signing kid is %s, want the new %s", k.ID, fresh.ID)
	}
	list, _ := m.List(ctx)
	if len(list) != 2 || list[0].ID != old.ID || list[0].State != "retired" || !list[0].Expiry.Equal(now.Add(time.Hour)) || list[1].State != "active" {
		t.Fatalf("keys after rotate = %+v", list)
	}
	if pub, _ := m.PublicKeys(ctx); len(pub) != 2 {
		t.Fatalf("JWKS has %d keys, want old and new", len(pub))
	}

	now = now.Add(time.Hour + time.Second)
	if _, err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ = m.List(ctx)
	for _, k := range list {
		if k.ID == old.ID {
			t.Errorf("the first key outlived RetainFor: %+v", list)
		}
	}
	if len(list) != 2 {
		t.Errorf("want the second key (retired) and the third (active), got %+v", list)
	}
}

// Replicas sharing a store: a key rotated in on one is in every replica's JWKS
// before any replica signs with it, and the key it replaces signs until then.
func TestRotateWithPropagationPublishesBeforeSigning(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := keys.Options{ReloadInterval: 5 * time.Second, Propagation: 10 * time.Second, RetainFor: time.Hour,
		Now: func() time.Time { return now }}
	a, _ := keys.New(store, opts)
	b, _ := keys.New(store, opts)
	for _, m := range []*keys.Manager{a, b} {
		if err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := b.SigningKey(ctx)
	fresh, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.State != "next" || !fresh.NotBefore.Equal(now.Add(10*time.Second)) {
		t.Fatalf("rotated key = %+v, want next, signing from now+10s", fresh)
	}
	published := func(m *keys.Manager, kid string) bool {
		pub, _ := m.PublicKeys(ctx)
		for _, k := range pub {
			if k.KeyID == kid {
				return true
			}
		}
		return false
	}
	for now = now.Add(time.Second); now.Before(fresh.NotBefore); now = now.Add(time.Second) {
		for name, m := range map[string]*keys.Manager{"a": a, "b": b} {
			if k, err := m.SigningKey(ctx); err != nil || k.ID != old.ID {
				t.Fatalf("at +%s replica %s signs with %s (%v), want the old key until the new one's NotBefore", now.Sub(fresh.CreatedAt), name, k.ID, err)
			}
		}
	}
	// Reloaded by now, so publishing it; and from NotBefore on, signing with it.
	for name, m := range map[string]*keys.Manager{"a": a, "b": b} {
		if !published(m, fresh.ID) || !published(m, old.ID) {
			t.Errorf("replica %s does not publish both keys at the new one's NotBefore", name)
		}
		if k, _ := m.SigningKey(ctx); k.ID != fresh.ID {
			t.Errorf("replica %s signs with %s at NotBefore, want the new key", name, k.ID)
		}
	}
	if _, err := b.Advance(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ := a.List(ctx)
	if len(list) != 2 || list[0].ID != old.ID || list[0].State != "retired" || !list[0].Expiry.Equal(fresh.NotBefore.Add(time.Hour)) {
		t.Errorf("keys after the take-over = %+v, want the old one retired at the new one's NotBefore, kept for RetainFor", list)
	}
}

// The schedule: a next key is published PublishAhead before it signs, takes over
// on time with nothing written to storage, the old one is retired and kept for
// RetainFor, then dropped. Two processes advancing at once rotate once.
func TestScheduledRotation(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	opts := keys.Options{
		RotationPeriod: 30 * 24 * time.Hour, PublishAhead: 24 * time.Hour, RetainFor: 2 * time.Hour,
		Now: func() time.Time { return now },
	}
	m, _ := keys.New(store, opts)
	other, _ := keys.New(store, opts)
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := m.SigningKey(ctx)

	now = t0.Add(28 * 24 * time.Hour)
	if changed, err := m.Advance(ctx); err != nil || changed {
		t.Fatalf("advance before the publish time: changed %v, err %v", changed, err)
	}

	now = t0.Add(29 * 24 * time.Hour)
	var wg sync.WaitGroup
	for _, mgr := range []*keys.Manager{m, other} {
		wg.Go(func() {
			if _, err := mgr.Advance(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, _ := m.List(ctx)
	if len(list) != 2 || list[0].State != "active" || list[1].State != "next" || !list[1].NotBefore.Equal(t0.Add(30*24*time.Hour)) {
		t.Fatalf("after publishing: %+v, want the active key and one next key signing from day 30", list)
	}
	if k, _ := m.SigningKey(ctx); k.ID != first.ID {
		t.Fatal("the next key signs before its time")
	}
	if pub, _ := m.PublicKeys(ctx); len(pub) != 2 {
		t.Fatalf("JWKS has %d keys, want the next key published ahead", len(pub))
	}

	now = t0.Add(30*24*time.Hour + time.Minute)
	k, _ := m.SigningKey(ctx)
	if k.ID != list[1].ID {
		t.Fatalf("at day 30 the signing kid is %s, want the next key %s", k.ID, list[1].ID)
	}
	if _, err := m.Advance(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ = m.List(ctx)
	if list[0].State != "retired" || !list[0].Expiry.Equal(t0.Add(30*24*time.Hour+2*time.Hour)) || list[1].State != "active" {
		t.Fatalf("after the switch: %+v", list)
	}

	now = t0.Add(30*24*time.Hour + 3*time.Hour)
	if _, err := m.Advance(ctx); err != nil {
		t.Fatal(err)
	}
	if pub, _ := m.PublicKeys(ctx); len(pub) != 1 || pub[0].KeyID != k.ID {
		t.Fatalf("after RetainFor the JWKS is %v, want only the new key", pub)
	}
}
