package producer_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/producer"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
)

// Running a producer on existing backends, as `mesh producer` and
// `mesh dev` do: Run serves until the signal, then shuts down gracefully.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	pool, err := pgxpool.New(ctx, "postgres://127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	q := queue.New(rdb, queue.Config{})
	s := store.New(pool, store.Config{})
	if err := s.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	reg := metrics.NewRegistry() // served at /metrics; the producer registers its collectors
	p, err := producer.New(q, s, producer.Config{Addr: ":8080", APIToken: os.Getenv("MESH_API_TOKEN"), Registry: reg}, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
