package store_test

import (
	"context"
	"fmt"
	"log"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// A pipeline's first stage goes through its life: inserted, activated by a
// worker, finished — which creates the DEVELOPER stage in the same statement.
// A stale second finish of the same attempt records nothing.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, meshtest.DatabaseURL())
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	schema := meshtest.UniqueName("example")
	defer pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")

	st := store.New(pool, store.Config{Schema: schema})
	if err := st.Migrate(ctx); err != nil { // creates the schema; safe to run on every start
		log.Fatal(err)
	}
	res, err := st.Insert(ctx, []task.Spec{{ClientKey: "order-42"}}, true)
	if err != nil {
		log.Fatal(err)
	}
	first := res[0].Task
	fmt.Println(first.Role, first.State, first.Stage)

	running, _ := st.Activate(ctx, "worker-1", []uuid.UUID{first.ID})
	out := store.Outcome{ID: first.ID, Attempt: running[0].Attempts}
	done, _ := st.Finish(ctx, "worker-1", []store.Outcome{out})
	fmt.Println(done.Done[0].State, done.Next[0].Role, done.Next[0].State, done.Next[0].Stage)

	again, _ := st.Finish(ctx, "worker-1", []store.Outcome{out})
	fmt.Println(len(again.Done), len(again.Next))

	dup, _ := st.Insert(ctx, []task.Spec{{ClientKey: "order-42"}}, true)
	fmt.Println(dup[0].Existing, dup[0].Task.ID == first.ID)
	// Output:
	// ARCHITECT pending 1
	// completed DEVELOPER pending 2
	// 0 0
	// true true
}
