package queue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// A producer enqueues, a worker claims a batch into its processing list and
// acks it when done.
func Example() {
	ctx := context.Background()
	opt, _ := redis.ParseURL(meshtest.RedisURL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	prefix := meshtest.UniqueName("example") // normally left to its "am" default
	defer deleteKeys(rdb, prefix)

	q := queue.New(rdb, queue.Config{Prefix: prefix})
	id := uuid.MustParse("0b5e1a5c-3f49-4d7e-9f5c-8d0e2a1b4c6d")
	if err := q.Enqueue(ctx, []queue.Item{{ID: id, Role: task.QA, Priority: task.P1}}); err != nil {
		fmt.Println(err)
		return
	}

	items, err := q.Claim(ctx, task.QA, "worker-1", 100)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range items {
		fmt.Println("claimed", it.Role, it.Priority, it.ID)
	}
	depth, _ := q.Depths(ctx)
	fmt.Println("active before ack:", depth[task.QA].Active)

	if err := q.Ack(ctx, "worker-1", items); err != nil {
		fmt.Println(err)
		return
	}
	depth, _ = q.Depths(ctx)
	fmt.Println("active after ack:", depth[task.QA].Active)
	// Output:
	// claimed QA P1 0b5e1a5c-3f49-4d7e-9f5c-8d0e2a1b4c6d
	// active before ack: 1
	// active after ack: 0
}

// On a Redis Cluster the Queue takes a Cluster client; each role's keys
// share one slot, and DefaultTags put the three roles on three masters of an
// evenly split Cluster. (Not run: it needs a Cluster.)
func Example_cluster() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}, // any nodes: seeds
		// Reload the slot map every second, so that after a failover the
		// client finds the promoted replica at once (the default is 60 s).
		ClusterStateReloadInterval: time.Second,
	})
	defer rdb.Close()
	q := queue.New(rdb, queue.Config{}) // every process of the mesh: the same Prefix and Tags
	_ = q
}

func deleteKeys(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}
