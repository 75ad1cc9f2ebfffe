package main

import (
	"os"
	"strings"
	"testing"
)

// `keys rotate` makes the kind of key keys.algorithm asks for, whether it runs
// through the server's socket or on the database file with no server running
// (offline it used to make RS256 whatever the file said).
func TestKeysRotateHonoursTheConfiguredAlgorithm(t *testing.T) {
	for _, online := range []bool{false, true} {
		name := map[bool]string{false: "offline", true: "through the socket"}[online]
		t.Run(name, func(t *testing.T) {
			e := newAdminEnv(t)
			cfg, err := os.ReadFile(e.cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.cfgPath, append(cfg, "keys: {algorithm: ES256}\n"...), 0o600); err != nil {
				t.Fatal(err)
			}
			e.seed(t) // an RS256 key, as a database made before the setting
			if online {
				e.serve(t)
			}
			var rotated struct {
				Algorithm string `json:"alg"`
			}
			e.cliJSON(t, &rotated, "keys", "rotate")
			if rotated.Algorithm != "ES256" {
				t.Errorf("keys rotate made a %q key, want ES256 as configured", rotated.Algorithm)
			}
			_, list, _ := e.cli(t, "keys", "list")
			if !strings.Contains(list, "ES256") {
				t.Errorf("keys list has no ES256 key:\n%s", list)
			}
		})
	}
}
