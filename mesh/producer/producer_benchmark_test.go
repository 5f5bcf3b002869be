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
// validation, admission and the group commit, against the real backends:
// "serial" is one client (the latency floor: one INSERT commit and one
// Redis push per request), "parallel" GOMAXPROCS×16 clients (group commit).
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
	submit := func(b *testing.B) bool {
		resp, err := client.Post(srv.URL+"/api/v1/tasks", "application/json",
			strings.NewReader(`{"role":"QA","payload":{"ticket":"AM-1","size":256}}`))
		if err != nil {
			b.Error(err)
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 202 {
			b.Errorf("status %d", resp.StatusCode)
			return false
		}
		return true
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if !submit(b) {
				return
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !submit(b) {
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	})
}
