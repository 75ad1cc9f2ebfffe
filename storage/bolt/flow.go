package bolt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/dingbridge/dingbridge/storage"
)

// Flow state — auth requests, codes, upstream states, device authorizations — is
// ephemeral by the storage contract, so it stays in memory: no fsync on the way
// from /authorize to the token response except the one durable commit. Each
// kind is a table: a map under a mutex, bounded by storage.Limits. Records are
// copied in and out, so no caller shares a slice with what is stored.
//
// Errors name no record: their IDs are, or lead to, secrets, and errors end up in logs.

// table holds one kind of record.
type table[T any] struct {
	name   string // for errors: "auth request"
	mu     sync.Mutex
	recs   map[string]T
	limit  int // live records at most; 0 is no limit
	expiry func(T) time.Time
	copyOf func(T) T              // a deep copy, times in UTC
	onDrop func(id string, rec T) // called, under mu, for each record dropExpiredLocked drops
	// fullSweep is when a create that found the table full last swept it: a
	// table full of live records refuses at once instead of scanning each time.
	fullSweep time.Time
	// order is every create in turn with the expiry it had, from head on, so
	// that each create can drop the records that expired since the last one
	// (dropExpiredLocked): memory follows the records that live, not the
	// sweeper's interval. A record whose expiry moved later is looked at again
	// at its new expiry; one whose expiry moved earlier waits for its old one
	// or the sweeper.
	order []queued
	head  int
	// dropped counts what dropExpiredLocked deleted since the last sweep,
	// which reports it with its own: expired records removed either way.
	dropped int
}

// queued is one entry of a table's order.
type queued struct {
	id     string
	expiry int64 // UnixNano
}

func newTable[T any](name string, limit int, expiry func(T) time.Time, copyOf func(T) T) *table[T] {
	return &table[T]{name: name, recs: make(map[string]T), limit: limit, expiry: expiry, copyOf: copyOf}
}

// fullSweepEvery bounds how often a full table is scanned for expired records.
const fullSweepEvery = time.Second

// roomLocked reports whether one more record fits, sweeping expired ones first
// when the table looks full.
func (t *table[T]) roomLocked(now time.Time) bool {
	if t.limit <= 0 || len(t.recs) < t.limit {
		return true
	}
	if now.Sub(t.fullSweep) < fullSweepEvery {
		return false
	}
	t.fullSweep = now
	t.dropped = t.sweepLocked(now, t.onDrop) // the next sweep reports them
	return len(t.recs) < t.limit
}

func (t *table[T]) create(ctx context.Context, id string, rec T) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: create %s: %w", t.name, err)
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, taken := t.recs[id]; taken {
		return fmt.Errorf("bolt: create %s: %w", t.name, storage.ErrAlreadyExists)
	}
	if !t.roomLocked(now) {
		return fmt.Errorf("bolt: create %s: %d stored: %w", t.name, len(t.recs), storage.ErrCapacity)
	}
	t.dropExpiredLocked(now)
	rec = t.copyOf(rec)
	t.recs[id] = rec
	t.order = append(t.order, queued{id, t.expiry(rec).UnixNano()})
	return nil
}

// dropExpiredLocked deletes the records at the head of the order that have
// expired, and forgets their entries.
func (t *table[T]) dropExpiredLocked(now time.Time) {
	for t.head < len(t.order) && t.order[t.head].expiry < now.UnixNano() {
		q := t.order[t.head]
		t.order[t.head] = queued{}
		t.head++
		rec, ok := t.recs[q.id]
		switch {
		case !ok:
		case expired(t.expiry(rec), now):
			t.dropLocked(q.id, rec)
		default: // its expiry moved later
			t.order = append(t.order, queued{q.id, t.expiry(rec).UnixNano()})
		}
	}
	switch waiting := len(t.order) - t.head; {
	case waiting > 2*len(t.recs)+1024:
		// Most entries name records taken or removed before they expired (an
		// auth request is removed at its code exchange, 15 minutes early):
		// start again from the records there are, so the order holds no more
		// than they do.
		t.order = make([]queued, 0, 2*len(t.recs)+64) // the old array may be large
		for id, rec := range t.recs {
			t.order = append(t.order, queued{id, t.expiry(rec).UnixNano()})
		}
		slices.SortFunc(t.order, func(a, b queued) int { return cmp.Compare(a.expiry, b.expiry) })
		t.head = 0
	case t.head > len(t.order)/2 && t.head > 64:
		t.order = append(t.order[:0], t.order[t.head:]...)
		t.head = 0
	}
}

// dropLocked deletes an expired record found by dropExpiredLocked.
func (t *table[T]) dropLocked(id string, rec T) {
	if t.onDrop != nil {
		t.onDrop(id, rec)
	}
	delete(t.recs, id)
	t.dropped++
}

// getLocked returns the live record under id.
func (t *table[T]) getLocked(id string, now time.Time) (T, bool) {
	rec, ok := t.recs[id]
	if !ok || expired(t.expiry(rec), now) {
		var zero T
		return zero, false
	}
	return rec, true
}

func (t *table[T]) get(ctx context.Context, id string) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("bolt: get %s: %w", t.name, err)
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	rec, ok := t.getLocked(id, now)
	if !ok {
		return zero, fmt.Errorf("bolt: get %s: %w", t.name, storage.ErrNotFound)
	}
	return t.copyOf(rec), nil
}

// update replaces the live record with what fn returns (fn gets a copy) and
// returns what was stored. fn runs under the table's lock, once.
func (t *table[T]) update(ctx context.Context, id string, fn func(T) (T, error), sameKey func(old, updated T) bool) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("bolt: update %s: %w", t.name, err)
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.getLocked(id, now)
	if !ok {
		return zero, fmt.Errorf("bolt: update %s: %w", t.name, storage.ErrNotFound)
	}
	updated, err := fn(t.copyOf(old))
	if err != nil {
		return zero, fmt.Errorf("bolt: update %s: %w", t.name, err)
	}
	if !sameKey(old, updated) {
		return zero, fmt.Errorf("bolt: update %s: update changed the ID", t.name)
	}
	updated = t.copyOf(updated)
	t.recs[id] = updated
	return t.copyOf(updated), nil
}

// take deletes the live record and returns it, once.
func (t *table[T]) take(ctx context.Context, id string) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("bolt: consume %s: %w", t.name, err)
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	rec, ok := t.getLocked(id, now)
	if !ok {
		return zero, fmt.Errorf("bolt: consume %s: %w", t.name, storage.ErrNotFound)
	}
	delete(t.recs, id)
	return rec, nil
}

// remove deletes the record, expired or not, or fails with storage.ErrNotFound.
func (t *table[T]) remove(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: delete %s: %w", t.name, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.recs[id]; !ok {
		return fmt.Errorf("bolt: delete %s: %w", t.name, storage.ErrNotFound)
	}
	delete(t.recs, id)
	return nil
}

// sweepLocked deletes every record expired at now, calling gone for each, and
// returns how many expired records it and dropExpiredLocked deleted since the
// last sweep.
func (t *table[T]) sweepLocked(now time.Time, gone func(id string, rec T)) int {
	n := t.dropped
	t.dropped = 0
	for id, rec := range t.recs {
		if expired(t.expiry(rec), now) {
			if gone != nil {
				gone(id, rec)
			}
			delete(t.recs, id)
			n++
		}
	}
	return n
}

// sweep is the sweeper's pass: a walk of the map, nothing decoded. At the
// default limits that is at most 100,000 entries, a few milliseconds.
func (t *table[T]) sweep(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sweepLocked(now, nil)
}

// removeWhere deletes every record match selects.
func (t *table[T]) removeWhere(match func(T) bool, gone func(id string, rec T)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, rec := range t.recs {
		if match(rec) {
			if gone != nil {
				gone(id, rec)
			}
			delete(t.recs, id)
		}
	}
}

func (t *table[T]) count(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, rec := range t.recs {
		if !expired(t.expiry(rec), now) {
			n++
		}
	}
	return n
}

// flowState is every ephemeral record of the process.
type flowState struct {
	authRequests *table[storage.AuthRequest]
	codes        *table[storage.AuthCode]
	states       *table[storage.UpstreamState]
	devices      *table[storage.DeviceAuthorization]
	// userCodes maps a user code to its device authorization's ID; guarded by
	// devices.mu and changed with devices.recs.
	userCodes map[string]string
}

func newFlowState(limits storage.Limits) *flowState {
	f := &flowState{
		authRequests: newTable("auth request", limits.AuthRequests,
			func(a storage.AuthRequest) time.Time { return a.Expiry }, copyAuthRequest),
		codes: newTable("auth code", 0, // at most one per auth request
			func(c storage.AuthCode) time.Time { return c.Expiry }, utcAuthCode),
		states: newTable("upstream state", limits.UpstreamStates,
			func(s storage.UpstreamState) time.Time { return s.Expiry }, utcUpstreamState),
		devices: newTable("device authorization", limits.Devices,
			func(d storage.DeviceAuthorization) time.Time { return d.Expiry }, copyDevice),
		userCodes: make(map[string]string),
	}
	f.devices.onDrop = f.forgetUserCodeLocked
	return f
}

func copyAuthRequest(a storage.AuthRequest) storage.AuthRequest {
	a.Scopes, a.Prompt, a.UILocales, a.AMR = slices.Clone(a.Scopes), slices.Clone(a.Prompt), slices.Clone(a.UILocales), slices.Clone(a.AMR)
	if a.MaxAge != nil {
		m := *a.MaxAge
		a.MaxAge = &m
	}
	return utcAuthRequest(a)
}

func copyDevice(d storage.DeviceAuthorization) storage.DeviceAuthorization {
	d.Scopes, d.AMR = slices.Clone(d.Scopes), slices.Clone(d.AMR)
	return utcDevice(d)
}

// sweep removes every expired flow record.
func (f *flowState) sweep(now time.Time, r *storage.GCResult) {
	r.AuthRequests = f.authRequests.sweep(now)
	r.AuthCodes = f.codes.sweep(now)
	r.UpstreamStates = f.states.sweep(now)
	f.devices.mu.Lock()
	r.Devices = f.devices.sweepLocked(now, f.forgetUserCodeLocked)
	f.devices.mu.Unlock()
}

// forgetUserCodeLocked drops a device's index entry if it still points at it.
func (f *flowState) forgetUserCodeLocked(id string, d storage.DeviceAuthorization) {
	if f.userCodes[d.UserCode] == id {
		delete(f.userCodes, d.UserCode)
	}
}

// revokeClient forgets every flow of the client.
func (f *flowState) revokeClient(clientID string) {
	f.authRequests.removeWhere(func(a storage.AuthRequest) bool { return a.ClientID == clientID }, nil)
	f.codes.removeWhere(func(c storage.AuthCode) bool { return c.ClientID == clientID }, nil)
	f.devices.removeWhere(func(d storage.DeviceAuthorization) bool { return d.ClientID == clientID }, f.forgetUserCodeLocked)
}

// --- storage.Storage methods on flow state ---

// CreateAuthRequest stores a copy of a's strings: those parsed from a request
// URL would otherwise keep the whole request line in memory for as long as the
// request waits (up to its 15 minutes when a person never comes back).
func (s *Storage) CreateAuthRequest(ctx context.Context, a storage.AuthRequest) error {
	for _, f := range []*string{&a.ID, &a.ClientID, &a.RedirectURI, &a.State, &a.Nonce, &a.ResponseType,
		&a.ResponseMode, &a.CodeChallenge, &a.CodeChallengeMethod, &a.LoginHint, &a.HintSubject, &a.DeviceID} {
		*f = strings.Clone(*f)
	}
	a.Scopes, a.Prompt, a.UILocales = cloneStrings(a.Scopes), cloneStrings(a.Prompt), cloneStrings(a.UILocales)
	return s.flow.authRequests.create(ctx, a.ID, a)
}

// cloneStrings copies a list and each of its strings.
func cloneStrings(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = strings.Clone(v)
	}
	return out
}

func (s *Storage) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	return s.flow.authRequests.get(ctx, id)
}

// UpdateAuthRequest: an expired request is storage.ErrNotFound here too, so a
// login cannot complete after it.
func (s *Storage) UpdateAuthRequest(ctx context.Context, id string, update func(storage.AuthRequest) (storage.AuthRequest, error)) error {
	_, err := s.flow.authRequests.update(ctx, id, update, func(old, updated storage.AuthRequest) bool { return old.ID == updated.ID })
	return err
}

func (s *Storage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.flow.authRequests.remove(ctx, id)
}

// CreateAuthCode stores c, or fails with storage.ErrAlreadyExists.
func (s *Storage) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	return s.flow.codes.create(ctx, c.ID, c)
}

// GetAuthCode returns the code without claiming it: from the flow state while
// it is unclaimed, afterwards from where ClaimAuthCode put it.
func (s *Storage) GetAuthCode(ctx context.Context, id string) (storage.AuthCode, error) {
	c, err := s.flow.codes.get(ctx, id)
	if !errors.Is(err, storage.ErrNotFound) {
		return c, err
	}
	c, found, err := s.spentCode(ctx, id)
	if err != nil {
		return storage.AuthCode{}, fmt.Errorf("bolt: get auth code: %w", err)
	}
	if !found {
		return storage.AuthCode{}, fmt.Errorf("bolt: get auth code: %w", storage.ErrNotFound)
	}
	return c, nil
}

// ClaimAuthCode marks the code claimed and returns it. A claimed code leaves
// the flow state for the write-back, which the token response's commit takes
// into bucketSpentCodes, where it stays until it expires: so a second claim
// can be told apart from a bad code (it gets the record with
// storage.ErrAlreadyUsed), and the codes of the last minute of logins are in
// the file, not in memory.
func (s *Storage) ClaimAuthCode(ctx context.Context, id string) (storage.AuthCode, error) {
	if err := ctx.Err(); err != nil {
		return storage.AuthCode{}, fmt.Errorf("bolt: claim auth code: %w", err)
	}
	now := time.Now()
	t := s.flow.codes
	t.mu.Lock()
	defer t.mu.Unlock() // held until the code is in the write-back: no claim finds it nowhere
	if code, ok := t.getLocked(id, now); ok {
		code.ClaimedAt = now.UTC()
		delete(t.recs, id)
		s.pending.mu.Lock()
		s.pending.codes[id] = code
		s.pending.deferred()
		s.pending.mu.Unlock()
		return code, nil
	}
	code, found, err := s.spentCode(ctx, id)
	if err != nil {
		return storage.AuthCode{}, fmt.Errorf("bolt: claim auth code: %w", err)
	}
	if !found {
		return storage.AuthCode{}, fmt.Errorf("bolt: claim auth code: %w", storage.ErrNotFound)
	}
	return code, fmt.Errorf("bolt: claim auth code: %w", storage.ErrAlreadyUsed)
}

// spentCode finds a claimed, unexpired code: in the write-back, or else in the
// file (the write-back first, as for users).
func (s *Storage) spentCode(ctx context.Context, id string) (storage.AuthCode, bool, error) {
	now := time.Now()
	s.pending.mu.Lock()
	c, ok := s.pending.codes[id]
	s.pending.mu.Unlock()
	if !ok {
		err := s.view(ctx, func(tx *bbolt.Tx) error {
			var err error
			ok, err = get(tx.Bucket([]byte(bucketSpentCodes)), id, &c)
			return err
		})
		if err != nil {
			return storage.AuthCode{}, false, err
		}
	}
	if !ok || expired(c.Expiry, now) {
		return storage.AuthCode{}, false, nil
	}
	return c, true, nil
}

// CreateUpstreamState stores st, or fails with storage.ErrAlreadyExists.
func (s *Storage) CreateUpstreamState(ctx context.Context, st storage.UpstreamState) error {
	return s.flow.states.create(ctx, st.ID, st)
}

// ConsumeUpstreamState deletes the state and returns it, once.
func (s *Storage) ConsumeUpstreamState(ctx context.Context, id string) (storage.UpstreamState, error) {
	return s.flow.states.take(ctx, id)
}

// CreateDeviceAuthorization stores d unless its ID or user code is taken.
func (s *Storage) CreateDeviceAuthorization(ctx context.Context, d storage.DeviceAuthorization) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: create device authorization: %w", err)
	}
	now := time.Now()
	t := s.flow.devices
	t.mu.Lock()
	defer t.mu.Unlock()
	_, idTaken := t.recs[d.ID]
	_, codeTaken := s.flow.userCodes[d.UserCode]
	if idTaken || codeTaken {
		return fmt.Errorf("bolt: create device authorization: %w", storage.ErrAlreadyExists)
	}
	// The sweep may free the user code too, so look again after it.
	if !t.roomLocked(now) {
		return fmt.Errorf("bolt: create device authorization: %d stored: %w", len(t.recs), storage.ErrCapacity)
	}
	t.dropExpiredLocked(now)
	d = t.copyOf(d)
	t.recs[d.ID] = d
	t.order = append(t.order, queued{d.ID, d.Expiry.UnixNano()})
	s.flow.userCodes[d.UserCode] = d.ID
	return nil
}

func (s *Storage) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (storage.DeviceAuthorization, error) {
	if err := ctx.Err(); err != nil {
		return storage.DeviceAuthorization{}, fmt.Errorf("bolt: get device authorization: %w", err)
	}
	now := time.Now()
	t := s.flow.devices
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.getLocked(s.flow.userCodes[userCode], now)
	if !ok {
		return storage.DeviceAuthorization{}, fmt.Errorf("bolt: get device authorization: %w", storage.ErrNotFound)
	}
	return t.copyOf(d), nil
}

// UpdateDeviceAuthorization applies update atomically and returns what was stored.
func (s *Storage) UpdateDeviceAuthorization(ctx context.Context, id string, update func(storage.DeviceAuthorization) (storage.DeviceAuthorization, error)) (storage.DeviceAuthorization, error) {
	// The user code is the index key; an update may not move it.
	return s.flow.devices.update(ctx, id, update, func(old, updated storage.DeviceAuthorization) bool {
		return old.ID == updated.ID && old.UserCode == updated.UserCode
	})
}
