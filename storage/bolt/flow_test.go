package bolt

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

// Memory follows the records that live: expired flow records go at the next
// create, not at the sweeper's next pass, and the sweep still counts them.
func TestExpiredFlowRecordsGoAtTheNextCreate(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	past := time.Now().Add(-time.Minute)
	for i := range 1000 {
		c := storage.AuthCode{ID: "old-" + time.Duration(i).String(), AuthRequestID: "r", ClientID: "grafana", Expiry: past}
		if err := s.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	live := storage.AuthCode{ID: "live", AuthRequestID: "r", ClientID: "grafana", Expiry: time.Now().Add(time.Minute)}
	if err := s.CreateAuthCode(ctx, live); err != nil {
		t.Fatal(err)
	}
	s.flow.codes.mu.Lock()
	held := len(s.flow.codes.recs)
	s.flow.codes.mu.Unlock()
	if held != 1 {
		t.Errorf("%d codes held after 1000 expired ones and a live one were created, want 1", held)
	}
	if _, err := s.GetAuthCode(ctx, "live"); err != nil {
		t.Errorf("the live code: %v", err)
	}
	r, err := s.GarbageCollect(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.AuthCodes != 1000 {
		t.Errorf("GarbageCollect reported %d expired codes removed, want the 1000 dropped since the last sweep", r.AuthCodes)
	}
}

// A record whose expiry moved later is not dropped at its first expiry.
func TestAFlowRecordWhoseExpiryMovedLaterStays(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	soon := time.Now().Add(20 * time.Millisecond)
	if err := s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "a", ClientID: "grafana", Expiry: soon}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateAuthRequest(ctx, "a", func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.Expiry = time.Now().Add(time.Hour)
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(soon.Add(10 * time.Millisecond)) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "b", ClientID: "grafana", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAuthRequest(ctx, "a"); err != nil {
		t.Errorf("the request whose expiry moved later: %v", err)
	}
}

// Records removed before they expire (an auth request at its code exchange)
// leave no trail: the table's order stays about as long as what it holds.
func TestTheExpiryOrderFollowsTheRecordsHeld(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	later := time.Now().Add(time.Hour)
	for i := range 20_000 {
		id := "a-" + time.Duration(i).String()
		if err := s.CreateAuthRequest(ctx, storage.AuthRequest{ID: id, ClientID: "grafana", Expiry: later}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAuthRequest(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	tbl := s.flow.authRequests
	tbl.mu.Lock()
	defer tbl.mu.Unlock()
	if waiting := len(tbl.order) - tbl.head; waiting > 2*len(tbl.recs)+1024+1 {
		t.Errorf("the order holds %d entries for %d records", waiting, len(tbl.recs))
	}
	if cap(tbl.order) > 10_000 {
		t.Errorf("the order's array has room for %d entries after 20,000 create-and-delete", cap(tbl.order))
	}
}

// A claimed code leaves memory for the file with the next commit, and is still
// recognised as used there, after a restart too.
func TestSpentCodesGoToTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dingbridge.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	code := storage.AuthCode{ID: "code-1", AuthRequestID: "grant-1", ClientID: "grafana", RedirectURI: "https://grafana.example.com/login",
		CodeChallenge: "challenge", CodeChallengeMethod: "S256", Expiry: time.Now().Add(time.Minute)}
	if err := s.CreateAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimAuthCode(ctx, "code-1"); err != nil {
		t.Fatal(err)
	}
	a, r := benchTokens("grant-1")
	if err := s.IssueTokens(ctx, a, r, storage.Rotation{}); err != nil {
		t.Fatal(err)
	}
	s.flow.codes.mu.Lock()
	inMemory := len(s.flow.codes.recs)
	s.flow.codes.mu.Unlock()
	if inMemory != 0 || !s.pending.empty() {
		t.Errorf("after the token commit: %d codes in the flow state, write-back empty %v", inMemory, s.pending.empty())
	}
	if !inFile(t, s, bucketSpentCodes, "code-1") {
		t.Error("the spent code is not in the file after the token response's commit")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ClaimAuthCode(ctx, "code-1")
	if !errors.Is(err, storage.ErrAlreadyUsed) {
		t.Fatalf("claim after a restart: %v, want ErrAlreadyUsed", err)
	}
	if got.AuthRequestID != "grant-1" || got.CodeChallenge != "challenge" || got.RedirectURI != code.RedirectURI || got.ClaimedAt.IsZero() {
		t.Errorf("the spent code came back as %+v", got)
	}
	r2, err := s.GarbageCollect(ctx, time.Now().Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r2.AuthCodes != 1 || inFile(t, s, bucketSpentCodes, "code-1") {
		t.Errorf("the sweep after its expiry: %d codes removed, still in the file %v", r2.AuthCodes, inFile(t, s, bucketSpentCodes, "code-1"))
	}
}
