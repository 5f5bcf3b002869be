package store

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one embedded schema change, applied once per schema.
type Migration struct {
	Version int    // from the file name's numeric prefix: 0001_tasks.sql → 1
	Name    string // the file name
	SQL     string // with {schema} still in it
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("store: listing migrations: %w", err)
	}
	var out []Migration
	for _, f := range files {
		m, err := readMigration(f)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("store: migrations %s and %s share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

func readMigration(file string) (Migration, error) {
	name := path.Base(file)
	prefix, _, ok := strings.Cut(name, "_")
	v, err := strconv.Atoi(prefix)
	if !ok || err != nil || v <= 0 {
		return Migration{}, fmt.Errorf("store: migration %s: name must start with a positive version and '_'", name)
	}
	body, err := migrationFS.ReadFile(file)
	if err != nil {
		return Migration{}, fmt.Errorf("store: reading migration %s: %w", name, err)
	}
	return Migration{Version: v, Name: name, SQL: string(body)}, nil
}

// Migrate creates the schema if missing and applies every embedded migration
// not yet recorded in its schema_migrations table, all in one transaction
// under a transaction-scoped advisory lock keyed by the schema, so processes
// starting at once apply each migration exactly once and the others wait and
// then find nothing to do. It is idempotent.
func (s *Store) Migrate(ctx context.Context) error {
	migs, err := Migrations()
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: migrating schema %s: beginning: %w", s.cfg.Schema, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := s.prepareMigrations(ctx, tx); err != nil {
		return err
	}
	applied, err := appliedVersions(ctx, tx, s.schema)
	if err != nil {
		return fmt.Errorf("store: migrating schema %s: reading schema_migrations: %w", s.cfg.Schema, err)
	}
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		if err := s.apply(ctx, tx, m); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: migrating schema %s: committing: %w", s.cfg.Schema, err)
	}
	return nil
}

// prepareMigrations takes the lock, then creates the schema and the
// bookkeeping table: after the lock, so concurrent CREATE … IF NOT EXISTS
// cannot race on the catalog's unique indexes.
func (s *Store) prepareMigrations(ctx context.Context, tx querier) error {
	stmts := []string{
		"SELECT pg_advisory_xact_lock($1)",
		"CREATE SCHEMA IF NOT EXISTS " + s.schema,
		"CREATE TABLE IF NOT EXISTS " + s.schema + ".schema_migrations (" +
			"version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	}
	for i, q := range stmts {
		var args []any
		if i == 0 {
			args = []any{migrationLockKey(s.cfg.Schema)}
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("store: migrating schema %s: %s: %w", s.cfg.Schema, q, err)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, tx querier, schema string) (map[int]bool, error) {
	rows, err := tx.Query(ctx, "SELECT version FROM "+schema+".schema_migrations")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

func (s *Store) apply(ctx context.Context, tx querier, m Migration) error {
	body := strings.ReplaceAll(m.SQL, "{schema}", s.schema)
	if _, err := tx.Exec(ctx, body); err != nil { // no arguments: simple protocol, several statements allowed
		return fmt.Errorf("store: applying migration %s to schema %s: %w", m.Name, s.cfg.Schema, err)
	}
	q := "INSERT INTO " + s.schema + ".schema_migrations (version, name) VALUES ($1, $2)"
	if _, err := tx.Exec(ctx, q, m.Version, m.Name); err != nil {
		return fmt.Errorf("store: recording migration %s in schema %s: %w", m.Name, s.cfg.Schema, err)
	}
	return nil
}

// migrationLockKey is the advisory lock of one schema's migrations.
func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("agentmesh/store migrate\x00" + schema))
	return int64(h.Sum64())
}
