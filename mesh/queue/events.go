package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// pausedValue is what the admission key holds while admission is paused.
const pausedValue = "paused"

// Publish sends events as one JSON array in one PUBLISH on the events
// channel. An empty batch sends nothing.
func (q *Queue) Publish(ctx context.Context, events []task.Event) error {
	if len(events) == 0 {
		return nil
	}
	msg, err := json.Marshal(events)
	if err != nil {
		return fmt.Errorf("encoding %d events: %w", len(events), err)
	}
	if err := q.rdb.Publish(ctx, q.keys.events(), msg).Err(); err != nil {
		return fmt.Errorf("publishing %d events: %w", len(events), err)
	}
	return nil
}

// Subscribe subscribes to the events channel; every message's payload is a
// JSON array of task.Event (see DecodeEvents). The caller closes it.
func (q *Queue) Subscribe(ctx context.Context) *redis.PubSub {
	return q.rdb.Subscribe(ctx, q.keys.events())
}

// DecodeEvents decodes the payload of one events message.
func DecodeEvents(payload string) ([]task.Event, error) {
	var evs []task.Event
	if err := json.Unmarshal([]byte(payload), &evs); err != nil {
		return nil, fmt.Errorf("decoding an events message: %w", err)
	}
	return evs, nil
}

// SetPaused switches admission off (paused) or back on, for every producer.
func (q *Queue) SetPaused(ctx context.Context, paused bool) error {
	var err error
	if paused {
		err = q.rdb.Set(ctx, q.keys.admission(), pausedValue, 0).Err()
	} else {
		err = q.rdb.Del(ctx, q.keys.admission()).Err()
	}
	if err != nil {
		return fmt.Errorf("setting admission paused=%t: %w", paused, err)
	}
	return nil
}

// Paused reports whether an operator has paused admission.
func (q *Queue) Paused(ctx context.Context) (bool, error) {
	v, err := q.rdb.Get(ctx, q.keys.admission()).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the admission switch: %w", err)
	}
	return v == pausedValue, nil
}
