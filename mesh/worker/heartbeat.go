package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Info is what a worker publishes with every heartbeat; the producer serves
// it at /api/v1/workers and the dashboard draws it.
type Info struct {
	ID          string          `json:"id"`
	Roles       []task.Role     `json:"roles"`
	RSS         uint64          `json:"rss_bytes"`
	Limit       uint64          `json:"limit_bytes"`
	SoftLimit   uint64          `json:"soft_limit_bytes"`
	HealthScore float64         `json:"health_score"`
	CPUPercent  float64         `json:"cpu_percent"`
	Inflight    int             `json:"inflight"`
	InflightBy  map[string]int  `json:"inflight_by_role,omitempty"`
	Paused      bool            `json:"paused"`
	Pauses      uint64          `json:"pauses"`
	StartedAt   time.Time       `json:"started_at"`
	SeenAt      time.Time       `json:"seen_at"`
	Version     string          `json:"version,omitempty"`
	Extra       json.RawMessage `json:"extra,omitempty"`
}

func (w *Worker) info() Info {
	s := w.health.Snapshot()
	in := Info{ID: w.cfg.ID, Roles: w.roles, RSS: s.RSS, Limit: s.Limit, SoftLimit: s.SoftLimit,
		HealthScore: s.HealthScore, CPUPercent: s.CPUPercent, Paused: s.Paused, Pauses: s.Pauses,
		StartedAt: w.started, SeenAt: time.Now(), Version: w.cfg.Version, InflightBy: map[string]int{}}
	for r, n := range w.Inflight() {
		in.Inflight += n
		in.InflightBy[string(r)] = n
	}
	return in
}

func (w *Worker) heartbeat(ctx context.Context) error {
	b, err := json.Marshal(w.info())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.HeartbeatInterval)
	defer cancel()
	return w.q.Heartbeat(ctx, w.cfg.ID, w.roles, w.cfg.LeaseTTL, b)
}

// heartbeatLoop renews the lease and publishes health until ctx ends.
func (w *Worker) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.heartbeat(ctx); err != nil && ctx.Err() == nil {
			w.m.BackendError("heartbeat")
			w.log.Warn("heartbeat failed", slog.Any("err", err))
		}
	}
}
