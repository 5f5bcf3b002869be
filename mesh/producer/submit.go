package producer

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// taskAnswer is {"task": Task}.
type taskAnswer struct {
	Task task.Task `json:"task"`
}

// tasksAnswer is {"tasks": [Task…]}.
type tasksAnswer struct {
	Tasks []task.Task `json:"tasks"`
}

// pipelineAnswer is the answer of POST /api/v1/pipelines.
type pipelineAnswer struct {
	PipelineID string    `json:"pipeline_id"`
	Task       task.Task `json:"task"`
}

// handleSubmit is POST /api/v1/tasks.
func (p *Producer) handleSubmit(w http.ResponseWriter, r *http.Request) {
	p.submitOne(w, r, p.tasks, decodeSpec, func(t task.Task) any { return taskAnswer{Task: t} })
}

// handlePipeline is POST /api/v1/pipelines: the ARCHITECT stage is
// inserted (with a new pipeline id); completing it creates the next stage.
func (p *Producer) handlePipeline(w http.ResponseWriter, r *http.Request) {
	p.submitOne(w, r, p.pipes, decodePipeline, func(t task.Task) any {
		a := pipelineAnswer{Task: t}
		if t.PipelineID != nil {
			a.PipelineID = t.PipelineID.String()
		}
		return a
	})
}

// submitOne runs the single-submission path: read, decode and validate,
// admission, group commit, answer.
func (p *Producer) submitOne(w http.ResponseWriter, r *http.Request, in *inserter,
	decode func([]byte, string) (task.Spec, *apiError), answer func(task.Task) any) {
	sp, ae := p.decodeOne(w, r, decode)
	if ae == nil {
		ae = p.adm.check(sp.Role)
	}
	if ae != nil {
		p.outcome(sp.Role, 1, ae)
		writeError(w, ae)
		return
	}
	ins, err := in.insert(r.Context(), sp)
	if err != nil {
		ae = insertError("storing the task", err)
		p.outcome(sp.Role, 1, ae)
		if !errors.Is(err, context.Canceled) {
			writeError(w, ae)
		}
		return
	}
	if ins.Conflict {
		ae = errConflict("client key " + quote(sp.ClientKey) + " is held by task " + ins.Task.ID.String() + " with a different request")
		p.outcome(sp.Role, 1, ae)
		writeError(w, ae)
		return
	}
	p.outcome(sp.Role, 1, nil)
	status := http.StatusAccepted
	if ins.Existing {
		status = http.StatusOK
	}
	writeJSON(w, status, answer(ins.Task))
}

func (p *Producer) decodeOne(w http.ResponseWriter, r *http.Request, decode func([]byte, string) (task.Spec, *apiError)) (task.Spec, *apiError) {
	body, ae := readBody(w, r, p.cfg.MaxBodyBytes)
	if ae != nil {
		return task.Spec{}, ae
	}
	return decode(body, r.Header.Get("Idempotency-Key"))
}

// insertError maps an error of storing what (an inserter's or a batch
// transaction's) to its answer; nil means stored.
func insertError(what string, err error) *apiError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errQueueFull):
		return errOverloaded("too many submissions waiting to be stored; retry shortly", DefaultRetryAfter)
	case errors.Is(err, errShuttingDown):
		return errUnavailable(metrics.ReasonError, "the producer is shutting down", DefaultRetryAfter)
	case errors.Is(err, context.Canceled):
		return &apiError{Status: 499, Code: CodeUnavailable, Message: "client went away", Reason: metrics.ReasonError}
	}
	return asAPIError(what, err)
}

func quote(s string) string { return `"` + truncate(s, 80) + `"` }

// handleBatch is POST /api/v1/tasks/batch: all or nothing. Every spec is
// validated first (422 naming "tasks[i].field"), every role passes
// admission, then the batch is stored whole or not at all. A batch without
// client keys joins the group commit as one unit (its statement is atomic,
// and no key can conflict); a keyed batch runs in a transaction of its own,
// which rolls back — 409, nothing written — when any client key is held by
// a different request (idempotent resubmits are returned as they are).
func (p *Producer) handleBatch(w http.ResponseWriter, r *http.Request) {
	specs, ae := p.decodeBatchRequest(w, r)
	if ae != nil {
		p.outcomeSpecs(specs, ae)
		writeError(w, ae)
		return
	}
	res, err := p.storeBatch(r.Context(), specs)
	if err != nil {
		ae = insertError("storing the batch", err)
		p.outcomeSpecs(specs, ae)
		if !errors.Is(err, context.Canceled) {
			writeError(w, ae)
		}
		return
	}
	out := make([]task.Task, len(res))
	for i := range res {
		out[i] = res[i].Task
	}
	p.outcomeSpecs(specs, nil)
	writeJSON(w, http.StatusAccepted, tasksAnswer{Tasks: out})
}

// storeBatch stores a batch submission whole or not at all, pushes its new
// tasks and announces them.
func (p *Producer) storeBatch(ctx context.Context, specs []task.Spec) ([]store.Inserted, error) {
	if !slices.ContainsFunc(specs, func(sp task.Spec) bool { return sp.ClientKey != "" }) {
		return p.tasks.insertBatch(ctx, specs) // the group commit pushes and announces
	}
	release, err := p.batchSlot(ctx, len(specs))
	if err != nil {
		return nil, err
	}
	res, err := p.s.InsertAtomic(ctx, specs, false)
	release()
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), insertTimeout)
	defer cancel()
	p.pending(pctx, res)
	return res, nil
}

// batchSlot bounds the batch path as the group-commit queue bounds single
// submissions: at most Config.InsertQueue tasks wait for a transaction (a
// batch beyond that gets 429 at once, unless nothing else waits), and at most
// Config.InsertConcurrency transactions run at once. The returned func frees
// the slot.
func (p *Producer) batchSlot(ctx context.Context, n int) (func(), error) {
	if !reserve(&p.batchWaiting, int64(n), int64(p.cfg.InsertQueue)) {
		return nil, errOverloaded("too many batch submissions waiting to be stored; retry shortly", p.cfg.RetryAfter)
	}
	select {
	case p.batchSem <- struct{}{}:
	case <-ctx.Done():
		p.batchWaiting.Add(-int64(n))
		return nil, ctx.Err()
	}
	return func() {
		<-p.batchSem
		p.batchWaiting.Add(-int64(n))
	}, nil
}

func (p *Producer) decodeBatchRequest(w http.ResponseWriter, r *http.Request) ([]task.Spec, *apiError) {
	body, ae := readBody(w, r, p.cfg.MaxBodyBytes)
	if ae != nil {
		return nil, ae
	}
	specs, ae := decodeBatch(body, p.cfg.MaxBatch)
	if ae != nil {
		return nil, ae
	}
	seen := map[task.Role]bool{}
	for _, sp := range specs {
		if seen[sp.Role] {
			continue
		}
		seen[sp.Role] = true
		if ae := p.adm.check(sp.Role); ae != nil {
			return specs, ae
		}
	}
	return specs, nil
}

// outcomeSpecs counts a batch's outcome per role (one unknown-role
// submission when the body could not be decoded).
func (p *Producer) outcomeSpecs(specs []task.Spec, ae *apiError) {
	if len(specs) == 0 {
		p.outcome("", 1, ae)
		return
	}
	byRole := map[task.Role]int{}
	for _, sp := range specs {
		byRole[sp.Role]++
	}
	for role, n := range byRole {
		p.outcome(role, n, ae)
	}
}

// requeued makes tasks an operator moved out of the dead-letter queue
// pending again in Redis and announces them.
func (p *Producer) requeued(r *http.Request, ts []task.Task) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), insertTimeout)
	defer cancel()
	at := time.Now()
	for start := 0; start < len(ts); start += store.MaxRowsPerStatement {
		chunk := ts[start:min(start+store.MaxRowsPerStatement, len(ts))]
		p.push(ctx, chunk)
		p.publishPending(ctx, chunk, at)
	}
}
