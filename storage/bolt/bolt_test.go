package bolt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return openTest(t, filepath.Join(t.TempDir(), "dingbridge.db"))
	})
}

func TestLimits(t *testing.T) {
	storagetest.RunLimits(t, func(t *testing.T, limits storage.Limits) storage.Storage {
		s, err := Open(filepath.Join(t.TempDir(), "dingbridge.db"), Options{Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// openTest opens path with the defaults a server uses (fsync included) and closes
// it when the test ends.
func openTest(t *testing.T, path string) *Storage {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenCreatesPrivateFileAndDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "dingbridge")
	path := filepath.Join(dir, "dingbridge.db")
	openTest(t, path)
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
	}
}

func TestOpenTightensLoosePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s := openTest(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openTest(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode %o after reopening, want 600", got)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s := openTest(t, path)
	want := storage.Client{ID: "grafana", Name: "Grafana", RedirectURIs: []string{"https://grafana.example.com/cb"}}
	if err := s.CreateClient(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	got, err := s.GetClient(ctx, "grafana")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != want.Name || len(got.RedirectURIs) != 1 {
		t.Errorf("client after reopening = %+v", got)
	}
}

func TestSecondOpenFailsWithErrLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	openTest(t, path)
	start := time.Now()
	s, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if err == nil {
		_ = s.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("error %v, want ErrLocked", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("gave up after %s, want about 200ms", elapsed)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s := openTest(t, path)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchemaKey), []byte("3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open of a schema 3 file succeeded")
	}
	if !errors.Is(err, ErrNewerSchema) {
		t.Errorf("error %v, want ErrNewerSchema", err)
	}
}

func TestNewFileHasSchemaVersion(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "dingbridge.db"))
	var v string
	_ = s.db.View(func(tx *bbolt.Tx) error {
		v = string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchemaKey)))
		return nil
	})
	if v != "2" {
		t.Errorf("schema version %q, want 2", v)
	}
}

// The index must shrink with the tokens, or the file grows without bound.
func TestGrantIndexFollowsTokens(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "dingbridge.db"))
	live, past := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	issue := func(at, rt, grant, replaces string, expiry time.Time) {
		t.Helper()
		var r *storage.RefreshToken
		if rt != "" {
			r = &storage.RefreshToken{ID: rt, GrantID: grant, Expiry: expiry}
		}
		if err := s.IssueTokens(ctx, storage.AccessToken{ID: at, GrantID: grant, Expiry: expiry}, r, storage.Rotation{ID: replaces}); err != nil {
			t.Fatal(err)
		}
	}
	issue("at1", "rt1", "g1", "", live)
	issue("at2", "rt2", "g1", "rt1", live) // rotation keeps rt1, marked
	issue("at3", "rt3", "g2", "", live)
	issue("at4", "rt4", "g3", "", past)
	if n := countKeys(t, s, bucketGrants); n != 8 {
		t.Fatalf("%d index entries for 4 access and 4 refresh tokens (rt1 kept, rotated)", n)
	}
	if err := s.DeleteAccessToken(ctx, "at3"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRefreshToken(ctx, "rt3"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(ctx, "g1", live); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GarbageCollect(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{bucketGrants, bucketAccessTokens, bucketRefreshTokens, bucketRotated} {
		if n := countKeys(t, s, b); n != 0 {
			t.Errorf("%s: %d keys left", b, n)
		}
	}
	// What is left is g1's revocation, until it ends.
	if n := countKeys(t, s, bucketExpiry); n != 1 {
		t.Errorf("expiry index: %d keys left, want 1 (the revocation)", n)
	}
	if _, err := s.GarbageCollect(ctx, live.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{bucketExpiry, bucketRevoked} {
		if n := countKeys(t, s, b); n != 0 {
			t.Errorf("%s: %d keys left after the revocation ended", b, n)
		}
	}
}

// More expired records than one GC transaction takes, interleaved with live ones.
func TestGarbageCollectInChunks(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "dingbridge.db"))
	live, past := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	const total = 2*gcChunk + 500
	wantExpired := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for i := range total {
			expiry := past.Add(time.Duration(i) * time.Millisecond)
			if i%7 == 0 {
				expiry = live
			} else {
				wantExpired++
			}
			id := time.Duration(i).String() // distinct, in no particular key order
			if err := putSession(tx, storage.Session{ID: id, Expiry: expiry}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.GarbageCollect(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.Sessions != wantExpired {
		t.Errorf("removed %d sessions, want %d", r.Sessions, wantExpired)
	}
	if n := countKeys(t, s, bucketSessions); n != total-wantExpired {
		t.Errorf("%d sessions left, want %d", n, total-wantExpired)
	}
	if n := countKeys(t, s, bucketExpiry); n != total-wantExpired {
		t.Errorf("%d expiry keys left, want %d", n, total-wantExpired)
	}
}

func countKeys(t *testing.T, s *Storage, bucket string) int {
	t.Helper()
	var n int
	err := s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket([]byte(bucket)).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// benchParallelism × GOMAXPROCS goroutines stand in for requests in flight: Batch
// only helps when writes arrive together, as they do on a busy server.
const benchParallelism = 32

// benchModes runs fn against a fresh database per write mode: as shipped
// (group commit, fsync), and without fsync to show what the disk costs. Each
// reports write commits per operation.
func benchModes(b *testing.B, fn func(b *testing.B, s *Storage)) {
	for _, m := range []struct {
		name   string
		noSync bool
	}{{"group", false}, {"group-nosync", true}} {
		b.Run(m.name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{NoSync: m.noSync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			b.SetParallelism(benchParallelism)
			before := s.commits.Load()
			b.ResetTimer()
			fn(b, s)
			b.ReportMetric(float64(s.commits.Load()-before)/float64(b.N), "commits/op")
		})
	}
}

// benchTokens returns tokens the size op will store: IDs are random like hashes.
func benchTokens(grant string) (storage.AccessToken, *storage.RefreshToken) {
	now := time.Now()
	a := storage.AccessToken{
		ID: rand.Text(), GrantID: grant, ClientID: "grafana", Subject: "union-" + grant,
		Scopes: []string{"openid", "profile", "email"}, Audience: []string{"grafana"},
		CreatedAt: now, Expiry: now.Add(time.Hour),
	}
	r := &storage.RefreshToken{
		ID: rand.Text(), GrantID: grant, ClientID: "grafana", Subject: "union-" + grant,
		Scopes: a.Scopes, Audience: a.Audience, AMR: []string{"pwd"}, AuthTime: now,
		ConnectorID: "dingtalk", CreatedAt: now, Expiry: now.Add(30 * 24 * time.Hour),
	}
	return a, r
}

func BenchmarkIssueTokens(b *testing.B) {
	benchModes(b, func(b *testing.B, s *Storage) {
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				a, r := benchTokens(rand.Text())
				if err := s.IssueTokens(ctx, a, r, storage.Rotation{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

// BenchmarkLoginWrites is every storage write of one login, in order, per iteration.
func BenchmarkLoginWrites(b *testing.B) {
	benchModes(b, func(b *testing.B, s *Storage) {
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := benchLogin(ctx, s); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}

// benchLogin is what a DingTalk login asks of storage, in order: the flow
// state in memory, and two durable writes (CompleteLogin at the callback,
// IssueTokens at the token exchange).
func benchLogin(ctx context.Context, s *Storage) error {
	now := time.Now()
	req := storage.AuthRequest{
		ID: rand.Text(), ClientID: "grafana", RedirectURI: "https://grafana.example.com/login/generic_oauth",
		Scopes: []string{"openid", "profile", "email"}, State: rand.Text(), Nonce: rand.Text(),
		ResponseType: "code", CodeChallenge: rand.Text() + rand.Text(), CodeChallengeMethod: "S256",
		CreatedAt: now, Expiry: now.Add(10 * time.Minute),
	}
	if err := s.CreateAuthRequest(ctx, req); err != nil {
		return err
	}
	st := storage.UpstreamState{ID: rand.Text(), AuthRequestID: req.ID, ConnectorID: "dingtalk", BrowserBinding: rand.Text(), Expiry: req.Expiry}
	if err := s.CreateUpstreamState(ctx, st); err != nil {
		return err
	}
	if _, err := s.ConsumeUpstreamState(ctx, st.ID); err != nil {
		return err
	}
	// A pool of people, so most logins update a user and some create one.
	subject := fmt.Sprintf("union-%d", time.Now().UnixNano()%10000)
	sess := storage.Session{ID: rand.Text(), Subject: subject, ConnectorID: "dingtalk", AuthTime: now,
		AMR: []string{"oauth2"}, Clients: []string{"grafana"}, CreatedAt: now, LastUsed: now, Expiry: now.Add(24 * time.Hour)}
	_, err := s.CompleteLogin(ctx, storage.Login{Subject: subject, Session: sess,
		Update: func(u storage.User, found bool) (storage.User, error) {
			if !found {
				u = storage.User{Subject: subject, ConnectorID: "dingtalk", UnionID: subject, Nick: "张三", FirstLogin: now}
			}
			u.LastLogin = now
			return u, nil
		}})
	if err != nil {
		return err
	}
	err = s.UpdateAuthRequest(ctx, req.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.Done, a.Subject, a.AuthTime, a.ConnectorID, a.SessionID = true, subject, now, "dingtalk", sess.ID
		return a, nil
	})
	if err != nil {
		return err
	}
	code := storage.AuthCode{ID: rand.Text(), AuthRequestID: req.ID, ClientID: "grafana", Expiry: now.Add(time.Minute)}
	if err := s.CreateAuthCode(ctx, code); err != nil {
		return err
	}
	if _, err := s.ClaimAuthCode(ctx, code.ID); err != nil {
		return err
	}
	a, r := benchTokens(req.ID)
	if err := s.IssueTokens(ctx, a, r, storage.Rotation{}); err != nil {
		return err
	}
	return s.DeleteAuthRequest(ctx, req.ID)
}

// BenchmarkLoginWritesOneAtATime is one person logging in on an idle server:
// nothing to share a commit with, so commits/op is what each login pays.
func BenchmarkLoginWritesOneAtATime(b *testing.B) {
	benchModes(b, func(b *testing.B, s *Storage) {
		ctx := context.Background()
		for b.Loop() {
			if err := benchLogin(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}
