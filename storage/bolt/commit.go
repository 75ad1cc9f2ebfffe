package bolt

import (
	"context"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// Group commit, without a timer. The writes on a login's path (IssueTokens,
// sessions, users, consents) queue for a commit: the caller that finds no
// commit running writes one at once, with everything queued so far, in its own
// goroutine; whoever arrives while that commit is being fsynced waits for the
// next, which carries all of them. One person alone pays one fsync and no
// delay; under load each fsync carries what arrived during the previous one.
// bbolt's own Batch instead makes every write wait MaxBatchDelay for company,
// which at one login at a time was most of a login's latency.
//
// Every write transaction, batched or not, first applies the write-back of
// logins (writeBack.apply), so a commit that acknowledges anything also makes
// durable every login that came before it.

// commitCall is one write waiting for a commit. fn nil: the caller wants the
// write-back committed and nothing else.
type commitCall struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

// batch runs fn in a write transaction shared with concurrent callers (one
// commit and fsync for all of them). fn may run more than once (when another
// fn in the same transaction fails, it runs again without it), so fn must
// reset whatever it reports back to its caller on every run. To keep a batch
// from being replayed for nothing, fn reports expected outcomes such as
// ErrNotFound through a captured variable and returns nil, which commits: so it
// must decide on such an answer before it has written anything. It returns an
// error only for real failures, which roll the whole transaction back.
func (s *Storage) batch(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	call := &commitCall{fn: fn, done: make(chan error, 1)}
	s.commitMu.Lock()
	s.queue = append(s.queue, call)
	lead := !s.committing
	s.committing = true
	s.commitMu.Unlock()
	if lead {
		s.commitQueued()
	}
	return <-call.done
}

// commitQueued writes one commit of everything queued. If more arrived
// meanwhile, a new goroutine leads the next commit, so that this caller can
// return with its answer rather than serve everybody behind it.
func (s *Storage) commitQueued() {
	s.commitMu.Lock()
	calls := s.queue
	s.queue = nil
	s.commitMu.Unlock()

	s.commitCalls(calls)

	s.commitMu.Lock()
	more := len(s.queue) > 0
	s.committing = more
	s.commitMu.Unlock()
	if more {
		go s.commitQueued()
	}
}

// commitCalls commits calls in one transaction and answers each of them. A
// call whose fn fails is taken out and run in a transaction of its own, the
// others are tried together again, as bbolt's Batch does.
func (s *Storage) commitCalls(calls []*commitCall) {
	for len(calls) > 0 {
		failed := -1
		err := s.update(context.Background(), func(tx *bbolt.Tx) error {
			for i, c := range calls {
				if c.fn == nil {
					continue
				}
				if err := safely(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if err == nil || failed < 0 {
			// Committed, or the write-back or the commit itself failed: the
			// same answer for every call.
			for _, c := range calls {
				c.done <- err
			}
			return
		}
		alone := calls[failed]
		calls = slices.Delete(slices.Clone(calls), failed, failed+1)
		alone.done <- s.update(context.Background(), func(tx *bbolt.Tx) error { return safely(alone.fn, tx) })
	}
}

// safely turns a panic in fn into its error: fn may be running on another
// caller's goroutine, which must not die of it.
func safely(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in a batched write: %v", p)
		}
	}()
	return fn(tx)
}

// update runs fn in a write transaction of its own, after the write-back.
func (s *Storage) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var applied writeBackSnapshot
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if applied, err = s.pending.apply(tx); err != nil {
			return fmt.Errorf("write back logins: %w", err)
		}
		return fn(tx)
	})
	if err == nil {
		s.commits.Add(1)
		s.pending.committed(applied)
	}
	return err
}

// sync commits the write-back (and nothing else) and returns once it is durable.
func (s *Storage) sync(ctx context.Context) error {
	return s.batch(ctx, nil)
}
