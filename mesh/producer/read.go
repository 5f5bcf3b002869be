package producer

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// pageAnswer is one page of a listing.
type pageAnswer struct {
	Tasks      []task.Task `json:"tasks"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// handleGet is GET /api/v1/tasks/{id}.
func (p *Producer) handleGet(w http.ResponseWriter, r *http.Request) {
	id, ae := parseID(r.PathValue("id"))
	if ae != nil {
		writeError(w, ae)
		return
	}
	t, err := p.s.Get(r.Context(), id)
	if err != nil {
		writeError(w, asAPIError("task "+id.String(), err))
		return
	}
	writeJSON(w, http.StatusOK, taskAnswer{Task: t})
}

// handleList is GET /api/v1/tasks?state=&role=&limit=&cursor=.
func (p *Producer) handleList(w http.ResponseWriter, r *http.Request) { p.list(w, r, false) }

// handleDeadList is GET /api/v1/dead?role=&limit=&cursor=.
func (p *Producer) handleDeadList(w http.ResponseWriter, r *http.Request) { p.list(w, r, true) }

func (p *Producer) list(w http.ResponseWriter, r *http.Request, dead bool) {
	f, ae := parseListQuery(r.URL.Query(), dead)
	if ae != nil {
		writeError(w, ae)
		return
	}
	page, err := p.s.List(r.Context(), f)
	if err != nil {
		writeError(w, asAPIError("listing tasks", err))
		return
	}
	if page.Tasks == nil {
		page.Tasks = []task.Task{}
	}
	writeJSON(w, http.StatusOK, pageAnswer{Tasks: page.Tasks, NextCursor: page.NextCursor})
}

// handleStats is GET /api/v1/stats.
func (p *Producer) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, p.hub.Stats())
}

// workersAnswer is the answer of GET /api/v1/workers.
type workersAnswer struct {
	Workers []queue.WorkerInfo `json:"workers"`
}

// handleWorkers is GET /api/v1/workers: the heartbeats of the last refresh.
func (p *Producer) handleWorkers(w http.ResponseWriter, _ *http.Request) {
	ws, _ := p.adm.Workers()
	if ws == nil {
		ws = []queue.WorkerInfo{}
	}
	writeJSON(w, http.StatusOK, workersAnswer{Workers: ws})
}

// handleRequeueOne is POST /api/v1/dead/{id}/requeue.
func (p *Producer) handleRequeueOne(w http.ResponseWriter, r *http.Request) {
	id, ae := parseID(r.PathValue("id"))
	if ae != nil {
		writeError(w, ae)
		return
	}
	ts, err := p.s.RequeueDead(r.Context(), nil, &id)
	if err != nil {
		writeError(w, asAPIError("dead task "+id.String(), err))
		return
	}
	p.requeued(r, ts)
	writeJSON(w, http.StatusOK, taskAnswer{Task: ts[0]})
}

// handleRequeueAll is POST /api/v1/dead/requeue?role=.
func (p *Producer) handleRequeueAll(w http.ResponseWriter, r *http.Request) {
	role, ae := parseRoleParam(r.URL.Query())
	if ae != nil {
		writeError(w, ae)
		return
	}
	ts, err := p.s.RequeueDead(r.Context(), role, nil)
	if err != nil {
		writeError(w, asAPIError("requeueing dead tasks", err))
		return
	}
	p.requeued(r, ts)
	writeJSON(w, http.StatusOK, map[string]int{"requeued": len(ts)})
}

// handlePurgeOne is DELETE /api/v1/dead/{id}.
func (p *Producer) handlePurgeOne(w http.ResponseWriter, r *http.Request) {
	id, ae := parseID(r.PathValue("id"))
	if ae != nil {
		writeError(w, ae)
		return
	}
	p.purge(w, r, nil, &id)
}

// handlePurgeAll is DELETE /api/v1/dead?role=.
func (p *Producer) handlePurgeAll(w http.ResponseWriter, r *http.Request) {
	role, ae := parseRoleParam(r.URL.Query())
	if ae != nil {
		writeError(w, ae)
		return
	}
	p.purge(w, r, role, nil)
}

func (p *Producer) purge(w http.ResponseWriter, r *http.Request, role *task.Role, id *uuid.UUID) {
	n, err := p.s.PurgeDead(r.Context(), role, id)
	if err != nil {
		what := "purging dead tasks"
		if id != nil {
			what = "dead task " + id.String()
		}
		writeError(w, asAPIError(what, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"purged": n})
}

// admissionAnswer is {"paused": bool}.
type admissionAnswer struct {
	Paused bool `json:"paused"`
}

// handleGetAdmission is GET /api/v1/admission, read from Redis.
func (p *Producer) handleGetAdmission(w http.ResponseWriter, r *http.Request) {
	paused, err := p.q.Paused(r.Context())
	if err != nil {
		writeError(w, asAPIError("reading the admission switch", err))
		return
	}
	writeJSON(w, http.StatusOK, admissionAnswer{Paused: paused})
}

// handleSetAdmission is PUT /api/v1/admission {"paused": bool}: it switches
// every producer (through Redis), this one at once.
func (p *Producer) handleSetAdmission(w http.ResponseWriter, r *http.Request) {
	body, ae := readBody(w, r, p.cfg.MaxBodyBytes)
	if ae != nil {
		writeError(w, ae)
		return
	}
	paused, ae := decodeAdmission(body)
	if ae != nil {
		writeError(w, ae)
		return
	}
	if err := p.q.SetPaused(r.Context(), paused); err != nil {
		writeError(w, asAPIError("switching admission", err))
		return
	}
	p.adm.setPaused(paused)
	p.log.Info("admission switched", "paused", paused)
	writeJSON(w, http.StatusOK, admissionAnswer{Paused: paused})
}
