package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// job is one submit request to send: one unit, or a batch of single tasks.
type job struct {
	units []unit
	due   int64 // intended send time of the request: its last unit's
}

func (j *job) pipeline() bool { return len(j.units) == 1 && j.units[0].pipeline }

// client speaks the producer's HTTP API: submits over the lean keep-alive
// pool, the rare GET checks over net/http.
type client struct {
	pool     *connPool
	http     *http.Client
	base     string
	token    string
	priority *task.Priority
	clock    clock
	batch    bool // single tasks go to /tasks/batch
	pad      string
}

// clock measures offsets from the start of the run on the monotonic clock.
type clock struct{ start time.Time }

func (c clock) now() int64 { return int64(time.Since(c.start)) }

func newTransport(maxConns int, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		MaxConnsPerHost:       maxConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
}

func newClient(cfg *Config, clk clock) (*client, error) {
	pool, err := newConnPool(cfg.Target, cfg.Token, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	return &client{
		pool:     pool,
		http:     &http.Client{Transport: newTransport(DefaultCheckWorkers, cfg.RequestTimeout), Timeout: cfg.RequestTimeout},
		base:     strings.TrimRight(cfg.Target, "/"),
		token:    cfg.Token,
		priority: cfg.Priority,
		clock:    clk,
		batch:    cfg.Batch > 1,
		pad:      strings.Repeat("x", task.MaxPayloadBytes),
	}, nil
}

func (c *client) close() {
	c.pool.close()
	c.http.CloseIdleConnections()
}

// submit sends one job and reports what happened; requests in flight finish
// (within RequestTimeout) even when the run is interrupted. buf is the
// caller's buffer for the answer, reused from request to request.
func (c *client) submit(j *job, buf *bytes.Buffer) *submitRecord {
	path, body := c.body(j)
	rec := &submitRecord{units: j.units, due: j.due, pipeline: j.pipeline(), bytesOut: int64(len(body))}
	rec.sent = c.clock.now()
	status, err := c.pool.post(path, body, buf)
	rec.done = c.clock.now()
	if err != nil {
		rec.err = transportError(err)
		return rec
	}
	raw := buf.Bytes()
	rec.status = status
	rec.bytesIn = int64(len(raw))
	if status < 200 || status > 299 {
		rec.err = statusError(status, raw)
		return rec
	}
	if err := c.parse(rec, raw); err != nil {
		rec.err = fmt.Sprintf("%d answer: %v", status, err)
		return rec
	}
	rec.accepted = true
	return rec
}

// body builds the request: one task, a batch, or a pipeline.
func (c *client) body(j *job) (string, []byte) {
	b := make([]byte, 0, 64+len(j.units)*(48+int(j.units[0].size)))
	switch {
	case j.pipeline():
		b = c.spec(b, j.units[0], false)
		return "/api/v1/pipelines", b
	case c.batch:
		b = append(b, `{"tasks":[`...)
		for i, u := range j.units {
			if i > 0 {
				b = append(b, ',')
			}
			b = c.spec(b, u, true)
		}
		return "/api/v1/tasks/batch", append(b, "]}"...)
	}
	return "/api/v1/tasks", c.spec(b, j.units[0], true)
}

// spec appends a task.Spec (or a pipeline body, without a role) whose
// payload is exactly u.size bytes of JSON when u.size >= 10.
func (c *client) spec(b []byte, u unit, withRole bool) []byte {
	b = append(b, '{')
	if withRole {
		b = append(b, `"role":"`...)
		b = append(b, u.role...)
		b = append(b, `",`...)
	}
	b = append(b, `"payload":`...)
	if u.size >= 10 {
		b = append(b, `{"pad":"`...)
		b = append(b, c.pad[:u.size-10]...)
		b = append(b, `"}`...)
	} else {
		b = append(b, "{}"...)
	}
	if c.priority != nil {
		b = append(b, `,"priority":`...)
		b = strconv.AppendInt(b, int64(*c.priority), 10)
	}
	return append(b, '}')
}

type idOnly struct {
	ID uuid.UUID `json:"id"`
}

type submitAnswer struct {
	Task       *idOnly   `json:"task"`
	Tasks      []idOnly  `json:"tasks"`
	PipelineID uuid.UUID `json:"pipeline_id"`
}

// taskPrefix starts the producer's answer to a single task: Task's first
// field is its id.
const taskPrefix = `{"task":{"id":"`

// fastTaskID reads the id of a single-task answer without a JSON decoder;
// false when the answer does not have the expected shape.
func fastTaskID(raw []byte) (uuid.UUID, bool) {
	end := len(taskPrefix) + 36
	if len(raw) <= end || string(raw[:len(taskPrefix)]) != taskPrefix || raw[end] != '"' {
		return uuid.Nil, false
	}
	id, err := uuid.ParseBytes(raw[len(taskPrefix):end])
	return id, err == nil && id != uuid.Nil
}

// parse takes the ids of the accepted units from a 2xx answer.
func (c *client) parse(rec *submitRecord, raw []byte) error {
	if !rec.pipeline && !c.batch {
		if id, ok := fastTaskID(raw); ok {
			rec.ids = []uuid.UUID{id}
			return nil
		}
	}
	var a submitAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	switch {
	case rec.pipeline:
		if a.PipelineID == uuid.Nil || a.Task == nil {
			return errors.New("answer lacks pipeline_id or task")
		}
		rec.ids, rec.arch = []uuid.UUID{a.PipelineID}, a.Task.ID
	case c.batch:
		if len(a.Tasks) != len(rec.units) {
			return fmt.Errorf("answer holds %d tasks for %d sent", len(a.Tasks), len(rec.units))
		}
		rec.ids = make([]uuid.UUID, len(a.Tasks))
		for i, t := range a.Tasks {
			rec.ids[i] = t.ID
		}
	default:
		if a.Task == nil || a.Task.ID == uuid.Nil {
			return errors.New("answer lacks task.id")
		}
		rec.ids = []uuid.UUID{a.Task.ID}
	}
	return nil
}

// statusError names a non-2xx answer by status and error code, never by
// message, so the error set stays small.
func statusError(status int, raw []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	s := strconv.Itoa(status) + " " + http.StatusText(status)
	if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
		s += " (" + e.Error.Code + ")"
	}
	return s
}

// transportError names a transport error by its operation and cause,
// without URLs or ephemeral ports, so the error set stays small.
func transportError(err error) string {
	prefix := ""
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		prefix = "timeout: "
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return prefix + op.Op + " " + op.Net + ": " + op.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return prefix + err.Error()
}

// taskState is the answer of GET /api/v1/tasks/{id}.
func (c *client) taskState(ctx context.Context, id uuid.UUID) checkResult {
	res := checkResult{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/tasks/"+id.String(), nil)
	if err != nil {
		res.state = "error: " + err.Error()
		return res
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		res.state = "error: " + transportError(err)
		return res
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		res.state = "not_found"
		return res
	}
	if resp.StatusCode != http.StatusOK {
		res.state = "error: " + statusError(resp.StatusCode, nil)
		return res
	}
	var a struct {
		Task task.Task `json:"task"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		res.state = "error: decoding answer: " + err.Error()
		return res
	}
	res.state = string(a.Task.State)
	if a.Task.CompletedAt != nil {
		res.completedAt = *a.Task.CompletedAt
	}
	return res
}
