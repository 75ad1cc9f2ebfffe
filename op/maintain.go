package op

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Leases for the housekeeping that one replica at a time should do. A lease
// lasts leaseTerms intervals and its holder renews it every interval, so a
// replica that dies hands its work to another within leaseTerms intervals.
const (
	leaseSweeper = "sweeper"
	leaseKeys    = "keys"
	leaseTerms   = 3
)

// newReplicaID names this process in the leases table: host and pid for the
// operator reading it, a random part so that a restarted process with a
// reused pid is still someone else.
func newReplicaID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomToken(6))
}

// underLease runs fn every interval (first at once when now is set, else
// after one interval) while this replica holds the lease name, until ctx is
// done. A storage error skips the turn: an unreachable database cannot be
// swept anyway.
func (p *Provider) underLease(ctx context.Context, name string, interval time.Duration, now bool, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	if !now {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	for {
		held, err := p.store.AcquireLease(ctx, name, p.replicaID, leaseTerms*interval)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.ErrorContext(ctx, "acquire lease", "lease", name, "err", err)
		case held:
			fn(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
