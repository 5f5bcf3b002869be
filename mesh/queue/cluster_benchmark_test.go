package queue

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// BenchmarkClusterClaimAck drains b.N pending tasks, a third per role,
// through batched claim + ack (up to 100 ids per claim, one pipelined ack
// per claim; 4 claimers per role) and reports tasks/s, on private servers
// started by the benchmark: a plain redis-server, a 1-master Cluster, a
// 3-master Cluster with DefaultTags (one role per master), and a 3-master
// Cluster with the role names as tags (every role on the middle master).
// Redis, the Cluster and the Go client share the machine's cores.
//
//	go test -run '^$' -bench ClusterClaimAck -benchtime 300000x -count 3 ./mesh/queue/
func BenchmarkClusterClaimAck(b *testing.B) {
	single := meshtest.StartRedis(b)
	one, three := meshtest.StartCluster(b, 1, 0), meshtest.StartCluster(b, 3, 0)
	byName := map[task.Role]string{task.Architect: "ARCHITECT", task.Developer: "DEVELOPER", task.QA: "QA"}
	for _, bc := range []struct {
		name  string
		redis func(b *testing.B) (redis.UniversalClient, string)
		cpu   func() time.Duration // the servers' CPU time so far
		tags  map[task.Role]string
	}{
		{"standalone", func(b *testing.B) (redis.UniversalClient, string) {
			rdb := redis.NewClient(&redis.Options{Addr: single.Addr(), PoolSize: 16})
			b.Cleanup(func() { _ = rdb.Close() })
			return rdb, meshtest.UniqueName("b") // a fresh prefix per run; the server dies with the benchmark
		}, single.CPU, nil},
		{"masters=1", clusterRedis(one), one.CPU, nil},
		{"masters=3", clusterRedis(three), three.CPU, nil},
		{"masters=3/role-names", clusterRedis(three), three.CPU, byName},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rdb, prefix := bc.redis(b)
			q := New(rdb, Config{Prefix: prefix, ClaimWait: 10 * time.Millisecond, Tags: bc.tags})
			for i, r := range task.Roles {
				fillRole(b, q, r, b.N/len(task.Roles)+btoi(i < b.N%len(task.Roles)))
			}
			server, client := bc.cpu(), processCPU()
			b.ResetTimer()
			drain(b, q, 4, 100)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
			// CPU per task shows where the time goes when Redis and the
			// client share two cores; the 1/100 s ticks of /proc make it
			// meaningful only for runs of a second or more.
			b.ReportMetric(float64((bc.cpu()-server).Nanoseconds())/float64(b.N), "redis-cpu-ns/task")
			b.ReportMetric(float64((processCPU()-client).Nanoseconds())/float64(b.N), "client-cpu-ns/task")
		})
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func clusterRedis(c *meshtest.Cluster) func(b *testing.B) (redis.UniversalClient, string) {
	return func(b *testing.B) (redis.UniversalClient, string) { return c.Redis(b) }
}

// drain claims and acks until every role is empty, with claimers goroutines
// per role, batch ids per claim.
func drain(b *testing.B, q *Queue, claimers, batch int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, r := range task.Roles {
		for i := range claimers {
			worker := fmt.Sprintf("bench-%s-%d", r, i)
			wg.Go(func() {
				for {
					items, err := q.Claim(ctx, r, worker, batch)
					if err != nil {
						b.Error(err)
						return
					}
					if len(items) == 0 {
						return
					}
					if err := q.Ack(ctx, worker, items); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// fillRole enqueues n tasks of role spread over the priorities, 1000 per
// round trip.
func fillRole(b *testing.B, q *Queue, r task.Role, n int) {
	b.Helper()
	for n > 0 {
		k := min(n, 1000)
		items := make([]Item, 0, k)
		for p := range task.NumPriorities {
			items = append(items, newItems(r, task.Priority(p), k/4+btoi(p < k%4))...)
		}
		if err := q.Enqueue(context.Background(), items); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}
