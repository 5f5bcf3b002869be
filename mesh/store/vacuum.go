package store

import (
	"context"
	"fmt"
)

// Garbage is what the tasks table holds besides its rows: every transition
// leaves a dead row version and dead entries in the partial indexes (a task
// enters tasks_open_idx twice, as pending and as active), which only VACUUM
// reclaims. Until then every scan of the open states — admission's Counts
// among them — walks past them.
type Garbage struct {
	Live, Dead int64 // the statistics collector's estimates
	// Autovacuum reports whether the server's autovacuum daemon runs; when
	// it does not (autovacuum = off), nothing else vacuums the table.
	Autovacuum bool
}

// Garbage reads the tasks table's live and dead tuple estimates and the
// server's autovacuum setting.
func (s *Store) Garbage(ctx context.Context) (Garbage, error) {
	var g Garbage
	var av string
	err := s.pool.QueryRow(ctx, `SELECT coalesce(n_live_tup, 0), coalesce(n_dead_tup, 0), current_setting('autovacuum')
		FROM pg_stat_user_tables WHERE relid = to_regclass($1)`, s.schema+".tasks").Scan(&g.Live, &g.Dead, &av)
	if err != nil {
		return Garbage{}, fmt.Errorf("store: reading the tasks table's statistics: %w", err)
	}
	g.Autovacuum = av == "on"
	return g, nil
}

// Vacuum runs VACUUM (ANALYZE) on the tasks table: it reclaims dead row
// versions and index entries without blocking reads or writes.
func (s *Store) Vacuum(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, "VACUUM (ANALYZE) "+s.schema+".tasks"); err != nil {
		return fmt.Errorf("store: vacuuming the tasks table: %w", err)
	}
	return nil
}
