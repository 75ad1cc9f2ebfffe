package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dingbridge/dingbridge/storage/postgres"
	"github.com/dingbridge/dingbridge/storage/postgres/postgrestest"
)

// postgresFile is a configuration file for storage type postgres, the DSN
// from $DINGBRIDGE_DB_DSN, listening on a free port.
func postgresFile(t *testing.T) string {
	addr := freeAddr(t)
	return writeFile(t, "dingbridge.yaml", strings.Replace(serveConfig("http://"+addr, addr, "/unused", "http://127.0.0.1:1"),
		`storage: {path: "/unused"}`, "storage: {type: postgres, dsn: $DINGBRIDGE_DB_DSN}", 1))
}

func TestDBMigrateOnPostgres(t *testing.T) {
	dsn := postgrestest.DSN(t)
	path := postgresFile(t)
	env := map[string]string{"DINGBRIDGE_DB_DSN": dsn, "DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret}

	code, stdout, stderr := runCLI(t, env, "db", "migrate", "--config", path)
	if code != 0 || !strings.Contains(stdout, "applied 1") {
		t.Fatalf("db migrate of an empty database: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, env, "db", "migrate", "--config", path)
	if code != 0 || !strings.Contains(stdout, "up to date") {
		t.Fatalf("db migrate again: exit %d\n%s%s", code, stdout, stderr)
	}

	// A database a newer dingbridge migrated: refused by migrate, serve and the
	// admin commands alike, with the way out.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "INSERT INTO schema_migrations (version, name) VALUES ($1, 'newer')", postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"db", "migrate"}, {"serve"}, {"users", "list"}} {
		code, stdout, stderr := runCLI(t, env, append(args, "--config", path)...)
		if code != exitError || !strings.Contains(stderr, "run a dingbridge at least as new") {
			t.Errorf("%s on a newer schema: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

func TestDBMigrateOnBolt(t *testing.T) {
	dbPath := filepath.Join(shortTempDir(t), "dingbridge.db")
	path := writeFile(t, "dingbridge.yaml", serveConfig("http://127.0.0.1:5556", "127.0.0.1:5556", dbPath, "http://127.0.0.1:1"))
	env := map[string]string{"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret}
	code, stdout, stderr := runCLI(t, env, "db", "migrate", "--config", path)
	if code != 0 || !strings.Contains(stdout, "up to date") {
		t.Fatalf("db migrate on bolt: exit %d\n%s%s", code, stdout, stderr)
	}
}

// The DSN carries the database password; when the database cannot be reached
// the commands say so without it.
func TestPostgresErrorsHideThePassword(t *testing.T) {
	const password = "pg-S3CRET-pass"
	path := postgresFile(t)
	env := map[string]string{
		"DINGBRIDGE_DB_DSN":      "postgres://dingbridge:" + password + "@127.0.0.1:1/dingbridge?connect_timeout=2",
		"DINGTALK_CLIENT_SECRET": dtSecret, "GRAFANA_OIDC_SECRET": rpSecret,
	}
	for _, args := range [][]string{{"serve"}, {"db", "migrate"}, {"client", "list"}, {"config", "check"}} {
		code, stdout, stderr := runCLI(t, env, append(args, "--config", path)...)
		if args[0] == "config" {
			if code != 0 {
				t.Errorf("config check of a valid postgres file: exit %d\n%s%s", code, stdout, stderr)
			}
		} else if code != exitError || !strings.Contains(stderr, "storage.dsn") {
			t.Errorf("%s with an unreachable database: exit %d, want 1 naming storage.dsn\n%s%s", args[0], code, stdout, stderr)
		}
		assertNoSecrets(t, stdout+stderr, password)
	}
}
