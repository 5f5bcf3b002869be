package producer_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/producer"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
)

// BenchmarkSubmit measures POST /api/v1/tasks end to end through HTTP,
// validation, admission and the group commit, against the real backends,
// with b.N submissions from GOMAXPROCS×16 concurrent clients.
func BenchmarkSubmit(b *testing.B) {
	rdb, prefix := meshtest.Redis(b)
	pool, schema := meshtest.Postgres(b)
	ctx := context.Background()
	s := store.New(pool, store.Config{Schema: schema})
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	p, err := producer.New(queue.New(rdb, queue.Config{Prefix: prefix}), s,
		producer.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxDepth: 1 << 40}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p.Start(ctx)
	srv := httptest.NewServer(p.Handler())
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = p.Stop(sctx)
		srv.Close()
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(srv.URL+"/api/v1/tasks", "application/json",
				strings.NewReader(`{"role":"QA","payload":{"ticket":"AM-1","size":256}}`))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 202 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
}
