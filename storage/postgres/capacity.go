package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/storage"
)

// capacity keeps a table of flow records below its cap: a flood of /authorize
// requests must not fill the database. Counting the table at every create would
// cost more than the create, so the count is read at most once per
// capacityRecount and the records this process created since are added to it.
// Several replicas each add only their own, so the table may overshoot the cap
// by what the others created within one recount: the cap is a guard, not a quota.
type capacity struct {
	table string
	max   int

	mu        sync.Mutex
	counted   int       // live records at countedAt
	since     int       // created by this process since
	countedAt time.Time // zero: never counted
}

const capacityRecount = time.Second

func newCapacity(table string, max int) *capacity {
	return &capacity{table: table, max: max}
}

// check returns storage.ErrCapacity when the table is full, and otherwise
// counts one more record as created.
func (c *capacity) check(ctx context.Context, pool *pgxpool.Pool, now time.Time) error {
	c.mu.Lock()
	stale := now.Sub(c.countedAt) >= capacityRecount
	c.mu.Unlock()
	if stale {
		// Counting stops at max: near the cap that is as much as it costs.
		var n int
		err := pool.QueryRow(ctx, fmt.Sprintf(
			"SELECT count(*) FROM (SELECT 1 FROM %s WHERE expiry >= $1 LIMIT $2) AS live", c.table),
			now, c.max).Scan(&n)
		if err != nil {
			return fmt.Errorf("count %s: %w", c.table, err)
		}
		c.mu.Lock()
		c.counted, c.since, c.countedAt = n, 0, now
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counted+c.since >= c.max {
		return storage.ErrCapacity
	}
	c.since++
	return nil
}
