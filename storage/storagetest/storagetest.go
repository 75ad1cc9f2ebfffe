// Package storagetest is the conformance suite for storage.Storage: the behaviours
// package op relies on, written once and run against every backend. A backend is
// done when its test calls Run and passes, with -race.
//
// What the suite requires beyond the comments in package storage:
//
//   - Times: values come back Equal to what was stored (the location may differ),
//     to at least microsecond precision: the suite's times are truncated to
//     microseconds because PostgreSQL's timestamptz keeps no more. Expiry is
//     compared as an instant, never as wall-clock text.
//   - Slices: nil and empty are interchangeable; a backend may return either.
//     *uint MaxAge keeps nil apart from a pointer to 0 (OIDC max_age=0).
//   - Expiry: a record whose Expiry has passed is ErrNotFound from Get, Claim,
//     Consume, UpdateAuthRequest and as the token IssueTokens rotates,
//     whether or not GarbageCollect has run.
//   - Update callbacks: an error from the callback is returned (errors.Is works)
//     and nothing is stored; the callback may not change the record's ID (or a
//     user's Subject) — that is an error and nothing is stored; UpsertUser fills
//     an empty Subject from its argument. Callbacks may run more than once, so
//     they must depend only on the record they are given.
//   - IDs: creating a record under an ID already taken is ErrAlreadyExists and
//     stores nothing, in IssueTokens too (nothing at all: the replaced token is
//     kept as well).
//   - Lists: ListClients and ListUsers return every record in no particular order;
//     on an empty storage, an empty (or nil) slice and no error.
//   - RevokeGrant of a grant with no tokens succeeds (and still revokes it).
//   - Limits: RunLimits checks ErrCapacity with a backend opened with small Limits.
//   - Context: a call made with an already-cancelled context either fails with an
//     error that errors.Is context.Canceled and changes nothing, or runs to
//     completion as if the context were live. Backends may ignore ctx.
//   - Values returned are the caller's own: changing them, or the slices passed
//     in, does not change what is stored.
package storagetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/storage"
)

type test struct {
	name string
	run  func(t *testing.T, s storage.Storage)
}

// Run runs every test against a fresh storage from open, which must return an empty
// storage and register its own cleanup with t.
func Run(t *testing.T, open func(t *testing.T) storage.Storage) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Client", clientTests()},
		{"AuthRequest", authRequestTests()},
		{"AuthCode", authCodeTests()},
		{"UpstreamState", upstreamStateTests()},
		{"Session", sessionTests()},
		{"Device", deviceTests()},
		{"Consent", consentTests()},
		{"Revoke", revokeTests()},
		{"Tokens", tokenTests()},
		{"User", userTests()},
		{"FindUsers", findUserTests()},
		{"KeySet", keySetTests()},
		{"Expiry", expiryTests()},
		{"Concurrency", concurrencyTests()},
		{"CompleteLogin", completeLoginTests()},
		{"Revocation", revocationTests()},
		{"Rotation", rotationTests()},
		{"Lease", leaseTests()},
		{"Count", countTests()},
		{"Sweep", sweepTests()},
		{"Storage", storageTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, open(t))
				})
			}
		})
	}
}

// now is the suite's clock, at the precision it asks backends to keep.
func now() time.Time { return time.Now().Truncate(time.Microsecond) }

func live() time.Time { return now().Add(time.Hour) }
func past() time.Time { return now().Add(-time.Hour) }

func uintPtr(n uint) *uint { return &n }

// must stops the test on an unexpected error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantErr stops the test unless err is target.
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// equal compares records the way the suite promises: times by instant, nil and
// empty slices alike. It does not stop the test, so it may be called from inside an
// update callback, which a backend may run on a goroutine of its own.
func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("%s differs\ngot:  %s\nwant: %s", what, g, w)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// normalize returns a deep copy of x with every time in UTC without a monotonic
// reading and every empty slice nil, so reflect.DeepEqual compares what matters.
func normalize[T any](x T) T {
	v := reflect.ValueOf(&x).Elem()
	normalizeValue(v)
	return x
}

func normalizeValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
			return
		}
		for i := range v.NumField() {
			normalizeValue(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		// Copy before changing elements: the slice is shared with the caller's value.
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		v.Set(c)
		for i := range c.Len() {
			normalizeValue(c.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			c := reflect.New(v.Type().Elem())
			c.Elem().Set(v.Elem())
			v.Set(c)
			normalizeValue(c.Elem())
		}
	}
}
