package producer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// handleHealthz is GET /healthz: the process is alive.
func (p *Producer) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyAnswer is the answer of /readyz: "ok" or the error of each backend.
type readyAnswer struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Error  *errorDetail      `json:"error,omitempty"`
}

// handleReadyz is GET /readyz: Redis and PostgreSQL are pinged
// concurrently, each within Config.ReadyTimeout; 503 names the failing ones.
// A backend that hangs (accepts and never answers) is abandoned at the
// timeout, so the answer comes within about ReadyTimeout whatever happens.
func (p *Producer) handleReadyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]func(context.Context) error{
		"redis":    func(ctx context.Context) error { _, err := p.q.Paused(ctx); return err },
		"postgres": p.pingStore,
	}
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := within(r.Context(), p.cfg.ReadyTimeout, check)
			mu.Lock()
			defer mu.Unlock()
			results[name] = "ok"
			if err != nil {
				results[name] = err.Error()
			}
		}()
	}
	wg.Wait()
	var failing []string
	for name, res := range results {
		if res != "ok" {
			failing = append(failing, name)
		}
	}
	if len(failing) == 0 {
		writeJSON(w, http.StatusOK, readyAnswer{Status: "ready", Checks: results})
		return
	}
	sort.Strings(failing)
	w.Header().Set("Retry-After", "1")
	msg := "not ready: " + strings.Join(failing, ", ") + " not answering"
	writeJSON(w, http.StatusServiceUnavailable, readyAnswer{Status: "unavailable", Checks: results,
		Error: &errorDetail{Code: CodeUnavailable, Message: msg, Field: strings.Join(failing, ",")}})
}

// pingStore asks PostgreSQL for a task that cannot exist: "not found" means
// the database answered and the schema is there.
func (p *Producer) pingStore(ctx context.Context) error {
	_, err := p.s.Get(ctx, uuid.Nil)
	if errors.Is(err, task.ErrNotFound) {
		return nil
	}
	if err == nil {
		return nil
	}
	return err
}

// within runs check with a timeout and returns at the timeout even when
// check ignores its context (it then finishes alone, bounded by the
// client's own timeouts).
func within(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- check(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %s", timeout)
	}
}
