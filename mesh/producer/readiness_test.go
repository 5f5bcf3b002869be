package producer_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// hungServer accepts connections and never answers, like a stopped process
// whose socket is still open.
func hungServer(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// readyWithin asks /readyz and checks it answers 503 naming the backend
// within about a second.
func (b *bundle) readyWithin(t *testing.T, failing string) {
	t.Helper()
	start := time.Now()
	a := b.get("/readyz")
	took := time.Since(start)
	if a.status != 503 || !strings.Contains(string(a.body), failing) || a.header.Get("Retry-After") == "" {
		t.Fatalf("readyz = %d %s, want 503 naming %s", a.status, a.body, failing)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("readyz took %s, want about 1s", took)
	}
	t.Logf("readyz answered 503 in %s: %s", took.Round(time.Millisecond), strings.TrimSpace(string(a.body)))
}

func TestReadyRedisDown(t *testing.T) {
	t.Parallel()
	srv := meshtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	b := setup(t, options{rdb: rdb})
	if a := b.get("/readyz"); a.status != 200 {
		t.Fatalf("readyz with Redis up = %d %s", a.status, a.body)
	}
	srv.Kill()
	b.readyWithin(t, "redis")
	srv.Start()
	meshtest.Eventually(t, 10*time.Second, func() bool { return b.get("/readyz").status == 200 }, "ready again after Redis restarts")
}

func TestReadyRedisHangs(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: hungServer(t), MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	b := setup(t, options{rdb: rdb})
	b.readyWithin(t, "redis")
}

func TestReadyPostgresHangs(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig("postgres://u@" + hungServer(t) + "/db?sslmode=disable&connect_timeout=3")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := setup(t, options{pool: pool})
	b.readyWithin(t, "postgres")
}

func TestReadyPostgresDown(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := setup(t, options{pool: pool})
	b.readyWithin(t, "postgres")
}

// TestAcceptedWhenRedisPushFails: a task committed to PostgreSQL is
// answered 202 even when the push to Redis then fails — it is durable and
// pending, and the maintenance sweeper re-pushes it; the failure is counted.
func TestAcceptedWhenRedisPushFails(t *testing.T) {
	t.Parallel()
	srv := meshtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	b := setup(t, options{rdb: rdb})
	srv.Kill()
	got := b.submit(`{"role":"QA"}`, 202)
	stored, err := b.s.Get(context.Background(), got.ID)
	if err != nil || stored.State != task.Pending {
		t.Fatalf("accepted task not durable and pending: %+v %v", stored, err)
	}
	if a := b.get("/metrics"); !strings.Contains(string(a.body), "agentmesh_producer_enqueue_failures_total 1") {
		t.Fatalf("push failure not counted")
	}
}
