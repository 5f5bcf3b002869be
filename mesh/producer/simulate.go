package producer

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// simulateTick is how often the generator submits its due tasks.
const simulateTick = 10 * time.Millisecond

// simulator is the bounded internal load generator behind POST
// /api/v1/simulate: at most one run at a time, at most MaxSimulateRate
// submissions per second for at most MaxSimulateSeconds. Its submissions
// take the same path as the API's (admission, group commit) without
// waiting for their answers; refused ones count as rejected.
type simulator struct {
	p       *Producer
	mu      sync.Mutex
	running bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// handleSimulate is POST /api/v1/simulate.
func (p *Producer) handleSimulate(w http.ResponseWriter, r *http.Request) {
	body, ae := readBody(w, r, p.cfg.MaxBodyBytes)
	if ae != nil {
		writeError(w, ae)
		return
	}
	spec, ae := decodeSimulate(body)
	if ae != nil {
		writeError(w, ae)
		return
	}
	if ae := p.sim.start(spec); ae != nil {
		writeError(w, ae)
		return
	}
	writeJSON(w, http.StatusAccepted, spec)
}

func (s *simulator) start(spec SimulateSpec) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return errUnavailable("", "the producer is shutting down", DefaultRetryAfter)
	case s.running:
		return errConflict("a simulation is already running; wait for it to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(spec.Seconds)*time.Second)
	s.running, s.cancel = true, cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.run(ctx, spec)
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	s.p.log.Info("simulation started", slog.Int("rate", spec.Rate), slog.Int("seconds", spec.Seconds))
	return nil
}

// stop ends a running simulation and refuses new ones.
func (s *simulator) stop() {
	s.mu.Lock()
	s.stopped = true
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// run submits rate tasks per second until ctx ends, open loop: each tick
// submits what is due since the start, so a slow tick is caught up.
func (s *simulator) run(ctx context.Context, spec SimulateSpec) {
	t := time.NewTicker(simulateTick)
	defer t.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int(now.Sub(start).Seconds()*float64(spec.Rate)) - sent
			due = min(due, spec.Rate) // never more than a second's worth at once
			s.submit(due, spec.PipelineFraction, sent)
			sent += due
		}
	}
}

// submit sends n generated tasks through admission and the inserters.
func (s *simulator) submit(n int, pipelineFraction float64, seq int) {
	var tasks, pipes []task.Spec
	for i := range n {
		payload, _ := json.Marshal(map[string]any{"simulated": true, "n": seq + i})
		pr := task.Priority(rand.IntN(task.NumPriorities))
		sp := task.Spec{Payload: payload, Priority: &pr, MaxAttempts: task.DefaultMaxAttempts}
		if rand.Float64() < pipelineFraction {
			sp.Role = task.Architect
			pipes = append(pipes, sp)
			continue
		}
		sp.Role = task.Roles[rand.IntN(len(task.Roles))]
		tasks = append(tasks, sp)
	}
	s.send(s.p.tasks, tasks)
	s.send(s.p.pipes, pipes)
}

func (s *simulator) send(in *inserter, specs []task.Spec) {
	p := s.p
	admitted := specs[:0]
	for _, sp := range specs {
		if ae := p.adm.check(sp.Role); ae != nil {
			p.outcome(sp.Role, 1, ae)
			continue
		}
		admitted = append(admitted, sp)
	}
	for i, res := range in.enqueue(admitted) {
		select {
		case r := <-res: // already answered: refused (queue full, shutting down) or stored
			if r.err != nil {
				p.outcome(admitted[i].Role, 1, insertError("storing the task", r.err))
			} else {
				p.outcome(admitted[i].Role, 1, nil)
			}
		default:
			p.outcome(admitted[i].Role, 1, nil) // queued: counted as accepted
		}
	}
}
