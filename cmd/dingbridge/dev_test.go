package main

import (
	"strings"
	"testing"
)

// dev's issuer is its listen address over plain http: a wildcard or another
// machine's address is refused at once, and a busy port names the flag to change.
func TestDevRefusesAddressesItCannotServe(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "--listen", "0.0.0.0:5556"},
		{"dev", "--listen", ":5556"},
		{"dev", "--dingtalk-listen", "[::]:5557"},
	} {
		code, _, stderr := runCLI(t, nil, args...)
		if code != exitUsage || !strings.Contains(stderr, args[1]) || !strings.Contains(stderr, "127.0.0.1:PORT") {
			t.Errorf("%v: exit %d, stderr %q; want %d naming %s and 127.0.0.1:PORT", args, code, stderr, exitUsage, args[1])
		}
	}

	busy := listenLoopback(t)
	defer busy.Close()
	for _, flag := range []string{"--listen", "--dingtalk-listen"} {
		// Both flags given, the other one a free port, so only the busy one fails.
		code, _, stderr := runCLI(t, nil, "dev", "--listen", "127.0.0.1:0", "--dingtalk-listen", "127.0.0.1:0", flag, busy.Addr().String())
		if code != 1 || !strings.Contains(stderr, busy.Addr().String()) || !strings.Contains(stderr, "choose another address with "+flag) {
			t.Errorf("dev %s %s (busy): exit %d, stderr %q; want 1 naming %s", flag, busy.Addr(), code, stderr, flag)
		}
	}
}
