package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
	"github.com/dingbridge/dingbridge/storage/bolt"
)

// A name stored by an older version, before upstream strings were cleaned, still
// cannot rewrite the operator's terminal or forge a row of `users list`.
func TestTablesEscapeControlCharacters(t *testing.T) {
	e := newAdminEnv(t)
	e.seed(t)
	store, err := bolt.Open(e.dbPath, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	const nick = "Mallory\x1b[2J\x1b[H\nforged-subject\tforged-nick\r\u202eevil"
	if _, err := store.UpsertUser(context.Background(), "mallory", func(storage.User, bool) (storage.User, error) {
		return storage.User{Subject: "mallory", ConnectorID: "dingtalk", UnionID: "mallory", Nick: nick, FirstLogin: now, LastLogin: now}, nil
	}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	for _, args := range [][]string{{"users", "list"}, {"users", "show", "mallory"}} {
		code, stdout, stderr := e.cli(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		if strings.ContainsAny(stdout, "\x1b\r\u202e") || strings.Contains(stdout, "\nforged-subject") {
			t.Errorf("%v prints the name raw:\n%q", args, stdout)
		}
		if !strings.Contains(stdout, `Mallory\x1b[2J`) {
			t.Errorf("%v does not show the name escaped:\n%s", args, stdout)
		}
	}
	_, list, _ := e.cli(t, "users", "list")
	if lines := strings.Count(list, "\n"); lines != 3 { // header, the seeded user, mallory
		t.Errorf("users list has %d lines, want 3:\n%s", lines, list)
	}
}
