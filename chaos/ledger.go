package chaos

import (
	"context"
	"sync"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// ledger counts terminal events per task id straight from the mesh's Redis
// events channel — a second witness beside the load generator's, which
// reads them through the producer (and so misses what happens while the
// producer is down). Events published while Redis itself is down are lost
// to both; a duplicate completion is never excused.
type ledger struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	completed map[uuid.UUID]int32
	dead      map[uuid.UUID]int32
	first     map[uuid.UUID]task.Event
	dupEvents []task.Event
	messages  int64
	bad       int64
}

// Events summarises the ledger.
type Events struct {
	// Messages is the events messages read; Undecodable those that failed.
	Messages    int64 `json:"messages"`
	Undecodable int64 `json:"undecodable"`
	// Completed and Dead count distinct tasks seen completing / dying.
	Completed int64 `json:"completed"`
	Dead      int64 `json:"dead"`
	// Duplicates counts completed events beyond the first per task;
	// CompletedAndDead tasks seen both completing and dying. Both must be 0.
	Duplicates       int64 `json:"duplicates"`
	CompletedAndDead int64 `json:"completed_and_dead"`
	// DuplicateIDs lists (up to 20) tasks completed more than once, with
	// their rows as PostgreSQL holds them after the drain.
	DuplicateIDs []string `json:"duplicate_ids,omitempty"`
	// DuplicateEvents are the completed events of those tasks as published.
	DuplicateEvents []task.Event `json:"duplicate_events,omitempty"`
}

func startLedger(ctx context.Context, rdb redis.UniversalClient, prefix string) *ledger {
	ctx, cancel := context.WithCancel(ctx)
	l := &ledger{cancel: cancel, done: make(chan struct{}), completed: map[uuid.UUID]int32{}, dead: map[uuid.UUID]int32{},
		first: map[uuid.UUID]task.Event{}}
	ps := queue.New(rdb, queue.Config{Prefix: prefix}).Subscribe(ctx)
	go func() {
		defer close(l.done)
		defer ps.Close()
		ch := ps.Channel(redis.WithChannelSize(4096))
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				l.add(m.Payload)
			}
		}
	}()
	return l
}

func (l *ledger) add(payload string) {
	evs, err := queue.DecodeEvents(payload)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages++
	if err != nil {
		l.bad++
		return
	}
	for _, e := range evs {
		switch e.State {
		case task.Completed:
			l.completed[e.ID]++
			if l.completed[e.ID] == 1 {
				l.first[e.ID] = e
			} else if len(l.dupEvents) < 40 {
				l.dupEvents = append(l.dupEvents, l.first[e.ID], e)
			}
		case task.Dead:
			l.dead[e.ID]++
		}
	}
}

func (l *ledger) close() {
	l.cancel()
	<-l.done
}

func (l *ledger) summary() Events {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := Events{Messages: l.messages, Undecodable: l.bad, Completed: int64(len(l.completed)), Dead: int64(len(l.dead))}
	for id, n := range l.completed {
		out.Duplicates += int64(n - 1)
		if n > 1 && len(out.DuplicateIDs) < 20 {
			out.DuplicateIDs = append(out.DuplicateIDs, id.String())
		}
		if l.dead[id] > 0 {
			out.CompletedAndDead++
		}
	}
	out.DuplicateEvents = l.dupEvents
	return out
}
