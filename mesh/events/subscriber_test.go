package events_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/events"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// sink collects what a subscriber delivers.
type sink struct {
	mu  sync.Mutex
	got []task.Event
}

func (s *sink) add(evs []task.Event) {
	s.mu.Lock()
	s.got = append(s.got, evs...)
	s.mu.Unlock()
}

func (s *sink) has(id uuid.UUID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.got {
		if e.ID == id {
			return true
		}
	}
	return false
}

func runSubscriber(t *testing.T, q *queue.Queue, subscribed chan struct{}, out *sink) {
	t.Helper()
	sub := events.NewSubscriber(q, out.add, events.SubscriberConfig{
		IdleCheck:   200 * time.Millisecond,
		OnSubscribe: func() { subscribed <- struct{}{} },
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitSubscribed(t *testing.T, c chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(15 * time.Second):
		t.Fatal("no subscription confirmed within 15s")
	}
}

func TestSubscriberDeliversAndIgnoresGarbage(t *testing.T) {
	t.Parallel()
	rdb, prefix := meshtest.Redis(t)
	q := queue.New(rdb, queue.Config{Prefix: prefix})
	subscribed, out := make(chan struct{}, 8), &sink{}
	runSubscriber(t, q, subscribed, out)
	waitSubscribed(t, subscribed)
	ctx := context.Background()
	if err := rdb.Publish(ctx, prefix+":events", "not json").Err(); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if err := q.Publish(ctx, []task.Event{{ID: id, Role: task.QA, State: task.Completed}}); err != nil {
		t.Fatal(err)
	}
	meshtest.Eventually(t, 5*time.Second, func() bool { return out.has(id) }, "event delivered")
}

func TestSubscriberResubscribesAfterRedisRestart(t *testing.T) {
	t.Parallel()
	srv := meshtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	q := queue.New(rdb, queue.Config{Prefix: "am"})
	subscribed, out := make(chan struct{}, 8), &sink{}
	runSubscriber(t, q, subscribed, out)
	waitSubscribed(t, subscribed)

	srv.Kill()
	srv.Start()
	waitSubscribed(t, subscribed) // go-redis or the subscriber re-subscribed
	id := uuid.New()
	meshtest.Eventually(t, 10*time.Second, func() bool {
		_ = q.Publish(context.Background(), []task.Event{{ID: id, Role: task.QA, State: task.Completed}})
		return out.has(id)
	}, "event delivered after the restart")
}
