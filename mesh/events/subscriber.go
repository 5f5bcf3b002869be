package events

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// DefaultIdleCheck is how long the subscriber waits for a message before it
// pings the connection; an unanswered ping means the server hangs.
const DefaultIdleCheck = 5 * time.Second

// Source opens a subscription to the events channel; *queue.Queue is one.
type Source interface {
	Subscribe(ctx context.Context) *redis.PubSub
}

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// IdleCheck: after this long without a message the connection is pinged,
	// and after twice this long without an answer it is replaced. Defaults to 5 s.
	IdleCheck time.Duration
	// OnSubscribe, if set, is called after every (re)subscription is
	// confirmed by Redis; tests wait on it instead of sleeping.
	OnSubscribe func()
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Subscriber reads the events channel and hands each message's events to
// Sink. Redis pub/sub keeps nothing: messages published while the
// subscription is down (a Redis restart) are lost to the dashboards, which
// resynchronize from the next events; the completion stream's consumers
// recover by reading the tasks (see docs/contracts.md).
type Subscriber struct {
	src  Source
	sink func([]task.Event)
	cfg  SubscriberConfig
	m    *metrics.Producer
	log  *slog.Logger
}

// NewSubscriber returns a Subscriber of src that calls sink from one
// goroutine, in the order messages arrive.
func NewSubscriber(src Source, sink func([]task.Event), cfg SubscriberConfig, m *metrics.Producer) *Subscriber {
	cfg.IdleCheck = cmp.Or(cfg.IdleCheck, DefaultIdleCheck)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Subscriber{src: src, sink: sink, cfg: cfg, m: m, log: cfg.Logger}
}

// Run reads until ctx ends, re-subscribing after errors (with backoff up to
// 2 s) and when the server stops answering pings.
func (s *Subscriber) Run(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		healthy := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			backoff = 50 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// session runs one PubSub until it fails or hangs; go-redis re-dials and
// re-subscribes inside a session after connection errors, so a session ends
// only on a hang, on repeated errors, or with ctx. It reports whether it
// received anything.
func (s *Subscriber) session(ctx context.Context) (received bool) {
	ps := s.src.Subscribe(ctx)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		stop()
		_ = ps.Close()
	}()
	pinged, errs := false, 0
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, s.cfg.IdleCheck)
		switch {
		case err == nil:
			received, pinged, errs = true, false, 0
			s.handle(msg)
		case ctx.Err() != nil:
			return received
		case isTimeout(err) && !pinged:
			pinged = true
			if perr := ps.Ping(ctx); perr != nil {
				s.log.Warn("events subscription: ping failed", slog.Any("err", perr))
			}
		case isTimeout(err):
			s.log.Warn("events subscription: Redis does not answer; re-subscribing")
			return received
		default:
			errs++
			s.log.Warn("events subscription failed", slog.Any("err", err), slog.Int("in_a_row", errs))
			if errs >= 3 {
				return received
			}
			if !sleepCtx(ctx, time.Duration(errs)*100*time.Millisecond) {
				return received
			}
		}
	}
	return received
}

func (s *Subscriber) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind == "subscribe" {
			s.m.Subscribed()
			s.log.Debug("subscribed to events", slog.String("channel", m.Channel))
			if s.cfg.OnSubscribe != nil {
				s.cfg.OnSubscribe()
			}
		}
	case *redis.Message:
		evs, err := queue.DecodeEvents(m.Payload)
		if err != nil {
			s.log.Warn("dropping an undecodable events message", slog.Any("err", err), slog.Int("bytes", len(m.Payload)))
			return
		}
		s.sink(evs)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
