package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/keys"
	"github.com/dingbridge/dingbridge/storage/bolt"
)

// Provisioning before the first start: the offline commands create the
// database as serve would, and serve then uses it as its own.
func TestCLICreatesTheDatabaseBeforeTheFirstStart(t *testing.T) {
	e := newAdminEnv(t)
	var added admin.ClientWithSecret
	e.cliJSON(t, &added, "client", "add", "--name", "Wiki", "--redirect-uri", appRedirect)
	fi, err := os.Stat(e.dbPath)
	if err != nil {
		t.Fatalf("client add did not create the database: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new database mode %o, want 600", fi.Mode().Perm())
	}
	var keyList []keys.SigningKeyInfo
	e.cliJSON(t, &keyList, "keys", "list")
	if len(keyList) == 0 || keyList[0].Algorithm != "RS256" {
		t.Fatalf("keys of the new database: %+v, want the RS256 key serve would make", keyList)
	}

	e.serve(t)
	tokens := e.logIn(t, e.relyingParty(t, added.ID, added.Secret, appRedirect))
	if kid := kidOf(t, tokens.IDToken); kid != keyList[0].ID {
		t.Errorf("serve signed with key %s, want %s: the one the CLI created", kid, keyList[0].ID)
	}
}

func TestCLIBeforeTheFirstStartNeedsTheFolder(t *testing.T) {
	e := newAdminEnv(t)
	missing := filepath.Join(e.dir, "not-yet")
	cfg := strings.Replace(readFile(t, e.cfgPath), e.dbPath, filepath.Join(missing, "dingbridge.db"), 1)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.cli(t, "users", "list")
	if code != exitError || !strings.Contains(stderr, "its folder "+missing+" does not either") {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and that the folder %s is missing", code, stderr, missing)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the command created %s: %v", missing, err)
	}
}

// A backup taken while serving is a database a new serve opens with every
// client, key, user and refresh token working; one taken while stopped too.
func TestBackupWhileServingRestoresEverything(t *testing.T) {
	e := newAdminEnv(t)
	srv := e.serve(t)
	var added admin.ClientWithSecret
	e.cliJSON(t, &added, "client", "add", "--name", "Wiki", "--redirect-uri", appRedirect)
	party := e.relyingParty(t, added.ID, added.Secret, appRedirect)
	tokens := e.logIn(t, party)
	var keysBefore []keys.SigningKeyInfo
	e.cliJSON(t, &keysBefore, "keys", "list")

	backupDir := shortTempDir(t)
	online := filepath.Join(backupDir, "online.db")
	code, stdout, stderr := e.cli(t, "backup", online)
	if code != 0 || !strings.Contains(stdout, "through the running server") || !strings.Contains(stdout, "checked") {
		t.Fatalf("backup while serving: exit %d\n%s%s", code, stdout, stderr)
	}
	if fi, err := os.Stat(online); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if code, _, stderr := e.cli(t, "backup", e.dbPath); code != exitUsage || !strings.Contains(stderr, "is the database itself") {
		t.Errorf("backup onto the database: exit %d, stderr %s", code, stderr)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	offline := filepath.Join(backupDir, "offline.db")
	if code, stdout, stderr := e.cli(t, "backup", offline); code != 0 || !strings.Contains(stdout, "from the stopped database's file") {
		t.Fatalf("backup while stopped: exit %d\n%s%s", code, stdout, stderr)
	}
	if err := bolt.Check(offline); err != nil {
		t.Errorf("offline backup: %v", err)
	}

	// Restore: the original is gone; serve runs from the copy.
	if err := os.Remove(e.dbPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(online, e.dbPath); err != nil {
		t.Fatal(err)
	}
	e.serve(t)
	var keysAfter []keys.SigningKeyInfo
	e.cliJSON(t, &keysAfter, "keys", "list")
	if len(keysAfter) != len(keysBefore) || keysAfter[0].ID != keysBefore[0].ID {
		t.Errorf("keys after restore %+v, want %+v", keysAfter, keysBefore)
	}
	var u admin.User
	e.cliJSON(t, &u, "users", "show", e.user.UnionID)
	if u.UnionID != e.user.UnionID {
		t.Errorf("user after restore: %+v", u)
	}
	// The client's secret, the refresh token and the user it is for, all from the copy.
	fresh, err := refresh(e.relyingParty(t, added.ID, added.Secret, appRedirect), tokens.RefreshToken)
	if err != nil {
		t.Fatalf("refresh from the backup: %v", err)
	}
	if fresh.IDTokenClaims.Subject != e.user.UnionID || kidOf(t, fresh.IDToken) != keysBefore[0].ID {
		t.Errorf("refreshed id_token sub %q kid %q, want %q signed by %q", fresh.IDTokenClaims.Subject, kidOf(t, fresh.IDToken), e.user.UnionID, keysBefore[0].ID)
	}
	// The static client too.
	if tokens := e.logIn(t, e.relyingParty(t, rpClientID, rpSecret, rpRedirect)); tokens.IDTokenClaims.Subject != e.user.UnionID {
		t.Errorf("login after restore: sub %q", tokens.IDTokenClaims.Subject)
	}
}

func TestDBCompact(t *testing.T) {
	e := newAdminEnv(t)
	srv := e.serve(t)
	e.logIn(t, e.relyingParty(t, rpClientID, rpSecret, rpRedirect))
	var keysBefore []keys.SigningKeyInfo
	e.cliJSON(t, &keysBefore, "keys", "list")

	code, _, stderr := e.cli(t, "db", "compact")
	if code != exitError || !strings.Contains(stderr, "is in use by a running dingbridge: stop it first") {
		t.Errorf("compact while serving: exit %d, stderr:\n%s", code, stderr)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	code, stdout, stderr := e.cli(t, "db", "compact")
	m := regexp.MustCompile(`compacted \S+: .* before, .* after \((\d+) → (\d+) bytes\)`).FindStringSubmatch(stdout)
	if code != 0 || m == nil {
		t.Fatalf("compact: exit %d\n%s%s", code, stdout, stderr)
	}
	fi, err := os.Stat(e.dbPath)
	if err != nil || fi.Mode().Perm() != 0o600 || m[2] != strconv.FormatInt(fi.Size(), 10) {
		t.Errorf("after compaction: %v, mode %v, size %d; the command said %s bytes", err, fi.Mode().Perm(), fi.Size(), m[2])
	}
	e.serve(t)
	var keysAfter []keys.SigningKeyInfo
	e.cliJSON(t, &keysAfter, "keys", "list")
	if len(keysAfter) == 0 || keysAfter[0].ID != keysBefore[0].ID {
		t.Errorf("keys after compaction %+v, want %+v", keysAfter, keysBefore)
	}
	e.logIn(t, e.relyingParty(t, rpClientID, rpSecret, rpRedirect))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
