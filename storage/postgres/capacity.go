package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/storage"
)

// capacity keeps a table of flow records below its limit: a flood of
// /authorize requests must not fill the database. Counting the table at every
// create would cost more than the create, so the live records are counted at
// most once per capacityRecount (or capacityRecountFull while the table looks
// full), and what this process created and removed since is added to that.
// Replicas each add only their own, so the table may overshoot the limit by
// what the others created within a recount: the limit is a guard, not a quota.
type capacity struct {
	table string
	limit int

	mu        sync.Mutex
	counted   int       // live records at countedAt
	delta     int       // created minus removed by this process since
	countedAt time.Time // zero: never counted
}

const (
	capacityRecount     = time.Second
	capacityRecountFull = 100 * time.Millisecond
)

func newCapacity(table string, limit int) *capacity {
	return &capacity{table: table, limit: limit}
}

// reserve returns storage.ErrCapacity when the table is full, and otherwise
// counts a record expiring at expiry as created (one already expired is not
// live, so it takes no room).
func (c *capacity) reserve(ctx context.Context, pool *pgxpool.Pool, now, expiry time.Time) error {
	c.mu.Lock()
	age := now.Sub(c.countedAt)
	full := c.counted+c.delta >= c.limit
	c.mu.Unlock()
	if age >= capacityRecount || (full && age >= capacityRecountFull) {
		// Counting stops at the limit: near it, that is all it costs.
		var n int
		err := pool.QueryRow(ctx, fmt.Sprintf(
			"SELECT count(*) FROM (SELECT FROM %s WHERE expiry >= $1 LIMIT $2) AS live", c.table),
			now, c.limit).Scan(&n)
		if err != nil {
			return fmt.Errorf("count %s: %w", c.table, err)
		}
		c.mu.Lock()
		c.counted, c.delta, c.countedAt = n, 0, now
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counted+c.delta >= c.limit {
		return storage.ErrCapacity
	}
	if !expiry.Before(now) {
		c.delta++
	}
	return nil
}

// release counts n records as removed by this process.
func (c *capacity) release(n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.delta -= n
	if c.counted+c.delta < 0 {
		c.delta = -c.counted
	}
	c.mu.Unlock()
}
