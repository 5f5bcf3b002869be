package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestMigrations(t *testing.T) {
	t.Parallel()
	migs, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 || migs[0].Version != 1 || migs[0].Name != "0001_tasks.sql" {
		t.Fatalf("migrations = %+v, want 0001_tasks.sql first", migs)
	}
	for i, m := range migs {
		if m.Version != i+1 {
			t.Errorf("migration %s has version %d, want %d (no gaps)", m.Name, m.Version, i+1)
		}
	}
}

func TestMigrateIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t) // migrated once
	for range 2 {
		if err := b.st.Migrate(b.ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	migs, _ := store.Migrations()
	var n int
	q := "SELECT count(*) FROM " + pgx.Identifier{b.schema}.Sanitize() + ".schema_migrations"
	if err := b.pool.QueryRow(b.ctx, q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(migs) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(migs))
	}
}

// TestMigrateConcurrent starts several "processes" (stores on separate pools)
// at once on a schema that does not exist yet, with a search_path pointing
// elsewhere: all must succeed, and the migrations apply once, in Config.Schema.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	other, pathSchema := meshtest.Postgres(t) // search_path = pathSchema
	schema := meshtest.UniqueName("tm")
	t.Cleanup(func() {
		if _, err := other.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("dropping %s: %v", schema, err)
		}
	})
	const procs = 6
	var wg sync.WaitGroup
	errs := make([]error, procs)
	for i := range procs {
		pool := other
		if i%2 == 1 { // half on pools of their own, as separate processes would be
			pool = meshtest.Pool(t, meshtest.DatabaseURL(), pathSchema, 1)
		}
		wg.Go(func() { errs[i] = store.New(pool, store.Config{Schema: schema}).Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	var applied, wrongPlace int
	q := "SELECT count(*) FROM " + pgx.Identifier{schema}.Sanitize() + ".schema_migrations"
	if err := other.QueryRow(ctx, q).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	migs, _ := store.Migrations()
	if applied != len(migs) {
		t.Errorf("schema_migrations has %d rows, want %d", applied, len(migs))
	}
	q = "SELECT count(*) FROM pg_tables WHERE schemaname = $1"
	if err := other.QueryRow(ctx, q, pathSchema).Scan(&wrongPlace); err != nil {
		t.Fatal(err)
	}
	if wrongPlace != 0 {
		t.Errorf("%d tables were created in the search_path schema instead of Config.Schema", wrongPlace)
	}
	// The store works there although the pool's search_path is elsewhere.
	st := store.New(other, store.Config{Schema: schema})
	res, err := st.Insert(ctx, []task.Spec{{Role: task.QA}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, res[0].Task.ID); err != nil || got.Role != task.QA {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	if got := (store.Config{}).WithDefaults().Schema; got != store.DefaultSchema {
		t.Fatalf("default schema = %q", got)
	}
}
