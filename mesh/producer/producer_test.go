package producer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/producer"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bundle is one producer on its own Redis prefix and PostgreSQL schema,
// served by an httptest server.
type bundle struct {
	t      *testing.T
	p      *producer.Producer
	srv    *httptest.Server
	q      *queue.Queue
	s      *store.Store
	rdb    redis.UniversalClient
	pool   *pgxpool.Pool
	schema string
	reg    *prometheus.Registry
	cfg    producer.Config
}

// options change what setup builds.
type options struct {
	cfg     func(*producer.Config)
	rdb     redis.UniversalClient // instead of the shared test Redis
	pool    *pgxpool.Pool         // instead of a fresh schema (not migrated)
	noStart bool
}

func setup(t *testing.T, opts ...options) *bundle {
	t.Helper()
	var o options
	if len(opts) > 0 {
		o = opts[0]
	}
	b := &bundle{t: t, reg: metrics.NewRegistry()}
	prefix := "am"
	if b.rdb = o.rdb; b.rdb == nil {
		var rdb *redis.Client
		rdb, prefix = meshtest.Redis(t)
		b.rdb = rdb
	}
	ctx := context.Background()
	b.schema = "unmigrated"
	if b.pool = o.pool; b.pool == nil {
		b.pool, b.schema = meshtest.Postgres(t)
	}
	b.q = queue.New(b.rdb, queue.Config{Prefix: prefix})
	b.s = store.New(b.pool, store.Config{Schema: b.schema})
	if o.pool == nil {
		if err := b.s.Migrate(ctx); err != nil {
			t.Fatalf("migrating: %v", err)
		}
	}
	b.cfg = producer.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: b.reg, WebDir: t.TempDir(),
		RefreshInterval: 20 * time.Millisecond, CountsInterval: 20 * time.Millisecond,
	}
	if o.cfg != nil {
		o.cfg(&b.cfg)
	}
	p, err := producer.New(b.q, b.s, b.cfg, nil)
	if err != nil {
		t.Fatalf("producer.New: %v", err)
	}
	b.p = p
	if !o.noStart {
		p.Start(ctx)
		b.srv = httptest.NewServer(p.Handler())
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Stop(sctx); err != nil {
				t.Errorf("stopping the producer: %v", err)
			}
			b.srv.Close()
		})
	}
	return b
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// apiErr decodes the JSON error body.
func (a answer) apiErr() (code, field, msg string) {
	var e struct {
		Error struct{ Code, Field, Message string } `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Code, e.Error.Field, e.Error.Message
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decoding %s: %v", a.body, err)
	}
}

// do sends one request; header is a list of name, value pairs.
func (b *bundle) do(method, path string, body io.Reader, header ...string) answer {
	b.t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

func (b *bundle) post(path, body string, header ...string) answer {
	b.t.Helper()
	return b.do("POST", path, strings.NewReader(body), header...)
}

func (b *bundle) get(path string) answer {
	b.t.Helper()
	return b.do("GET", path, nil)
}

// submit posts one task and expects want.
func (b *bundle) submit(body string, want int, header ...string) task.Task {
	b.t.Helper()
	a := b.post("/api/v1/tasks", body, header...)
	if a.status != want {
		b.t.Fatalf("POST /api/v1/tasks %s = %d %s, want %d", body, a.status, a.body, want)
	}
	var out struct{ Task task.Task }
	_ = json.Unmarshal(a.body, &out)
	return out.Task
}

// written is what a request could have written: rows and queued members.
type written struct{ rows, queued int64 }

func (b *bundle) written() written {
	b.t.Helper()
	ctx := context.Background()
	var w written
	if err := b.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{b.schema, "tasks"}.Sanitize()).Scan(&w.rows); err != nil {
		b.t.Fatalf("counting rows: %v", err)
	}
	ds, err := b.q.Depths(ctx)
	if err != nil {
		b.t.Fatalf("reading depths: %v", err)
	}
	for _, d := range ds {
		w.queued += d.Active + d.Delayed
		for _, n := range d.Pending {
			w.queued += n
		}
	}
	return w
}

func (b *bundle) nothingWritten(before written, what string) {
	b.t.Helper()
	if after := b.written(); after != before {
		b.t.Fatalf("%s wrote something: rows/queued %+v → %+v", what, before, after)
	}
}

// TestSubmitErrors: every error path of POST /api/v1/tasks answers its
// status and code, names the field, and writes nothing.
func TestSubmitErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: func(c *producer.Config) { c.MaxBodyBytes = 128 << 10 }})
	nested := `{"role":"QA","payload":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	bigPayload := `{"role":"QA","payload":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`
	cases := []struct {
		name        string
		body        string
		header      []string
		status      int
		code, field string
	}{
		// malformed JSON
		{"truncated", `{"role":`, nil, 400, "bad_json", ""},
		{"syntax", `{"role" "QA"}`, nil, 400, "bad_json", ""},
		{"invalid UTF-8", "{\"role\":\"QA\",\"payload\":{\"a\":\"\xff\xfe\"}}", nil, 400, "bad_json", ""},
		{"deeply nested", nested, nil, 400, "bad_json", ""},
		{"trailing data", `{"role":"QA"} {"role":"QA"}`, nil, 400, "bad_json", ""},
		{"not an object", `["QA"]`, nil, 400, "bad_json", ""},
		{"null", `null`, nil, 400, "bad_json", ""},
		{"empty", ``, nil, 400, "bad_json", ""},
		// media type and size
		{"text/plain", `{"role":"QA"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", ""},
		{"no content type", `{"role":"QA"}`, []string{"Content-Type", ""}, 415, "unsupported_media_type", ""},
		{"latin1 charset", `{"role":"QA"}`, []string{"Content-Type", "application/json; charset=latin1"}, 415, "unsupported_media_type", ""},
		{"body too large", `{"role":"QA","payload":"` + strings.Repeat("a", 200<<10) + `"}`, nil, 413, "too_large", ""},
		// validation
		{"unknown role", `{"role":"CEO"}`, nil, 422, "validation", "role"},
		{"missing role", `{"payload":{}}`, nil, 422, "validation", "role"},
		{"priority out of range", `{"role":"QA","priority":7}`, nil, 422, "validation", "priority"},
		{"priority not a number", `{"role":"QA","priority":"high"}`, nil, 422, "validation", "priority"},
		{"max_attempts out of range", `{"role":"QA","max_attempts":99}`, nil, 422, "validation", "max_attempts"},
		{"payload too large", bigPayload, nil, 422, "validation", "payload"},
		{"payload with NUL", `{"role":"QA","payload":{"a":"\u0000"}}`, nil, 422, "validation", "payload"},
		{"client key too long", `{"role":"QA","client_key":"` + strings.Repeat("k", 201) + `"}`, nil, 422, "validation", "client_key"},
		{"client key with NUL", `{"role":"QA","client_key":"a\u0000b"}`, nil, 422, "validation", "client_key"},
		{"header and body keys differ", `{"role":"QA","client_key":"a"}`, []string{"Idempotency-Key", "b"}, 422, "validation", "client_key"},
		{"unknown field", `{"role":"QA","colour":"red"}`, nil, 422, "validation", "colour"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := b.written()
			a := b.post("/api/v1/tasks", c.body, c.header...)
			code, field, msg := a.apiErr()
			if a.status != c.status || code != c.code || field != c.field || msg == "" {
				t.Fatalf("= %d %s, want %d code %q field %q", a.status, a.body, c.status, c.code, c.field)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			b.nothingWritten(before, c.name)
		})
	}
}

// TestTooLargeWhileReading: the 413 comes as soon as the limit is crossed,
// while the client is still sending (the body never ends here).
func TestTooLargeWhileReading(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: func(c *producer.Config) { c.MaxBodyBytes = 4 << 10 }})
	before := b.written()
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(`{"role":"QA","payload":"`))
		_, _ = pw.Write(bytes.Repeat([]byte("a"), 64<<10)) // past the limit (and the client's buffers), then stall
	}()
	req, _ := http.NewRequest("POST", b.srv.URL+"/api/v1/tasks", pr)
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	context.AfterFunc(ctx, func() { _ = pw.CloseWithError(ctx.Err()) }) // the body ends only when the test does
	resp, err := b.srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("no answer while the body was still open: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	b.nothingWritten(before, "a body over the limit")
}

func TestSubmitAndGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got := b.submit(`{"role":"DEVELOPER","priority":1,"payload":{"ticket":"AM-1"},"max_attempts":5}`, 202)
	if got.ID == uuid.Nil || got.Role != task.Developer || got.Priority != 1 || got.State != task.Pending || got.MaxAttempts != 5 {
		t.Fatalf("accepted task %+v", got)
	}
	a := b.get("/api/v1/tasks/" + got.ID.String())
	var out struct{ Task task.Task }
	a.decode(t, &out)
	if a.status != 200 || out.Task.ID != got.ID || string(out.Task.Payload) != `{"ticket": "AM-1"}` && string(out.Task.Payload) != `{"ticket":"AM-1"}` {
		t.Fatalf("GET = %d %s", a.status, a.body)
	}
	if w := b.written(); w.rows != 1 || w.queued != 1 {
		t.Fatalf("written %+v, want one row and one queued member", w)
	}
	// defaults
	d := b.submit(`{"role":"QA"}`, 202)
	if d.Priority != task.DefaultPriority || d.MaxAttempts != task.DefaultMaxAttempts || string(d.Payload) != "{}" {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestGetErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if a := b.get("/api/v1/tasks/" + uuid.NewString()); a.status != 404 {
		t.Fatalf("unknown id = %d %s", a.status, a.body)
	}
	a := b.get("/api/v1/tasks/not-a-uuid")
	if code, field, _ := a.apiErr(); a.status != 422 || code != "validation" || field != "id" {
		t.Fatalf("bad id = %d %s", a.status, a.body)
	}
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"PATCH", "/api/v1/tasks", 405, "GET, HEAD, POST"},       // exists for other methods
		{"DELETE", "/api/v1/stats", 405, "GET, HEAD"},            // read-only
		{"GET", "/api/v1/simulate", 405, "POST"},                 // write-only
		{"PUT", "/api/v1/dead", 405, "GET, HEAD, DELETE"},        // GET and DELETE
		{"GET", "/api/v1/nope", 404, ""},                         // unknown API path
		{"POST", "/api/v1/nope", 404, ""},                        // unknown API path, other method
		{"GET", "/api/v2/tasks", 404, ""},                        // unknown version
		{"GET", "/api/v1/tasks/", 404, ""},                       // empty id
		{"GET", "/ws/other", 404, ""},                            // unknown stream
		{"POST", "/healthz", 405, "GET, HEAD"},                   // health is GET
		{"DELETE", "/api/v1/dead/" + uuid.NewString(), 404, ""},  // not a dead task
		{"POST", "/api/v1/dead/not-a-uuid/requeue", 422, ""},     // bad id
		{"DELETE", "/api/v1/tasks/" + uuid.NewString(), 405, ""}, // tasks are not deleted
	}
	for _, c := range cases {
		a := b.do(c.method, c.path, nil)
		code, _, _ := a.apiErr()
		if a.status != c.status || code == "" {
			t.Errorf("%s %s = %d %s, want %d", c.method, c.path, a.status, a.body, c.status)
		}
		if c.allow != "" && a.header.Get("Allow") != c.allow {
			t.Errorf("%s %s Allow = %q, want %q", c.method, c.path, a.header.Get("Allow"), c.allow)
		}
	}
}

func TestIdempotentResubmit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"role":"QA","payload":{"n":1}}`
	first := b.submit(body, 202, "Idempotency-Key", "order-1")
	before := b.written()
	again := b.submit(body, 200, "Idempotency-Key", "order-1")
	if again.ID != first.ID || again.ClientKey != "order-1" {
		t.Fatalf("resubmit returned %s, want %s", again.ID, first.ID)
	}
	// the key in the body is the same key
	if viaBody := b.submit(`{"role":"QA","payload":{"n":1},"client_key":"order-1"}`, 200); viaBody.ID != first.ID {
		t.Fatalf("body key returned %s, want %s", viaBody.ID, first.ID)
	}
	b.nothingWritten(before, "an idempotent resubmit")
	a := b.post("/api/v1/tasks", `{"role":"QA","payload":{"n":2}}`, "Idempotency-Key", "order-1")
	if code, _, _ := a.apiErr(); a.status != 409 || code != "conflict" {
		t.Fatalf("different body = %d %s, want 409", a.status, a.body)
	}
	b.nothingWritten(before, "a conflicting resubmit")
}

// TestConcurrentSubmitsGroupCommit: concurrent submissions share
// statements, and each gets its own task.
func TestConcurrentSubmitsGroupCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 300
	ids := make(chan uuid.UUID, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			req, _ := http.NewRequest("POST", b.srv.URL+"/api/v1/tasks", strings.NewReader(fmt.Sprintf(`{"role":"QA","payload":{"i":%d}}`, i)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := b.srv.Client().Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var out struct{ Task task.Task }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 202 {
				errs <- fmt.Errorf("status %d: %v", resp.StatusCode, err)
				return
			}
			ids <- out.Task.ID
		}()
	}
	seen := map[uuid.UUID]bool{}
	for range n {
		select {
		case id := <-ids:
			seen[id] = true
		case err := <-errs:
			t.Fatal(err)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct ids for %d submissions", len(seen), n)
	}
	if w := b.written(); w.rows != n || w.queued != n {
		t.Fatalf("written %+v, want %d rows and members", w, n)
	}
	count, sum := histogram(t, b.reg, "agentmesh_producer_insert_batch_size")
	if sum != n || count >= n {
		t.Fatalf("group commits: %d statements for %d submissions, want fewer statements", count, int(sum))
	}
	t.Logf("%d submissions in %d group commits (mean batch %.1f)", n, count, sum/float64(count))
}

// histogram returns the count and sum of a histogram without labels.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no %s", name)
	return 0, 0
}

func TestBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: func(c *producer.Config) { c.MaxBatch = 5 }})
	a := b.post("/api/v1/tasks/batch", `{"tasks":[{"role":"QA"},{"role":"ARCHITECT","priority":0},{"role":"DEVELOPER","client_key":"b-1"}]}`)
	var out struct{ Tasks []task.Task }
	a.decode(t, &out)
	if a.status != 202 || len(out.Tasks) != 3 || out.Tasks[1].Role != task.Architect || out.Tasks[2].ClientKey != "b-1" {
		t.Fatalf("batch = %d %s", a.status, a.body)
	}
	before := b.written()
	if before.rows != 3 || before.queued != 3 {
		t.Fatalf("written %+v after a batch of 3", before)
	}
	cases := []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"one invalid role", `{"tasks":[{"role":"QA"},{"role":"QA"},{"role":"QA"},{"role":"CEO"}]}`, 422, "validation", "tasks[3].role"},
		{"one bad priority type", `{"tasks":[{"role":"QA"},{"role":"QA","priority":"x"}]}`, 422, "validation", "tasks[1].priority"},
		{"one unknown field", `{"tasks":[{"role":"QA","x":1}]}`, 422, "validation", "tasks[0].x"},
		{"element not an object", `{"tasks":[{"role":"QA"},7]}`, 400, "bad_json", ""},
		{"too many", `{"tasks":[{"role":"QA"},{"role":"QA"},{"role":"QA"},{"role":"QA"},{"role":"QA"},{"role":"QA"}]}`, 422, "validation", "tasks"},
		{"empty", `{"tasks":[]}`, 422, "validation", "tasks"},
		{"missing", `{}`, 422, "validation", "tasks"},
		{"key conflict", `{"tasks":[{"role":"QA"},{"role":"QA","client_key":"b-1"}]}`, 409, "conflict", ""},
		{"bad JSON", `{"tasks":[`, 400, "bad_json", ""},
	}
	for _, c := range cases {
		a := b.post("/api/v1/tasks/batch", c.body)
		code, field, _ := a.apiErr()
		if a.status != c.status || code != c.code || field != c.field {
			t.Errorf("%s: %d %s, want %d %s %q", c.name, a.status, a.body, c.status, c.code, c.field)
		}
		b.nothingWritten(before, c.name)
	}
	// an idempotent member is returned as it is, the others are created
	a = b.post("/api/v1/tasks/batch", `{"tasks":[{"role":"DEVELOPER","client_key":"b-1"},{"role":"QA"}]}`)
	a.decode(t, &out)
	if a.status != 202 || out.Tasks[0].ClientKey != "b-1" || out.Tasks[0].ID == out.Tasks[1].ID {
		t.Fatalf("batch with a resubmit = %d %s", a.status, a.body)
	}
	if w := b.written(); w.rows != 4 || w.queued != 4 {
		t.Fatalf("written %+v, want 4 rows and members", w)
	}
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.post("/api/v1/pipelines", `{"payload":{"feature":"login"},"priority":1,"client_key":"p-1"}`)
	var out struct {
		PipelineID string    `json:"pipeline_id"`
		Task       task.Task `json:"task"`
	}
	a.decode(t, &out)
	if a.status != 202 || out.Task.Role != task.Architect || out.Task.Stage != 1 || out.Task.PipelineID == nil ||
		out.PipelineID != out.Task.PipelineID.String() {
		t.Fatalf("pipeline = %d %s", a.status, a.body)
	}
	if again := b.post("/api/v1/pipelines", `{"payload":{"feature":"login"},"priority":1,"client_key":"p-1"}`); again.status != 200 {
		t.Fatalf("resubmit = %d %s", again.status, again.body)
	}
	before := b.written()
	for _, c := range []struct{ body, field string }{
		{`{"role":"QA"}`, "role"},                // a pipeline has no role field
		{`{"priority":9}`, "priority"},           // out of range
		{`{"max_attempts":0.5}`, "max_attempts"}, // not an integer
	} {
		a := b.post("/api/v1/pipelines", c.body)
		if _, field, _ := a.apiErr(); a.status != 422 || field != c.field {
			t.Errorf("%s = %d %s, want 422 %s", c.body, a.status, a.body, c.field)
		}
	}
	if a := b.post("/api/v1/pipelines", `{"payload":{"feature":"other"},"client_key":"p-1"}`); a.status != 409 {
		t.Errorf("conflicting pipeline = %d %s", a.status, a.body)
	}
	b.nothingWritten(before, "rejected pipelines")
}

func TestList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 7 {
		role := "QA"
		if i%2 == 1 {
			role = "ARCHITECT"
		}
		b.submit(fmt.Sprintf(`{"role":%q,"payload":{"i":%d}}`, role, i), 202)
	}
	var seen []task.Task
	cursor := ""
	for pages := 0; ; pages++ {
		a := b.get("/api/v1/tasks?role=QA&state=pending&limit=3&cursor=" + cursor)
		var page struct {
			Tasks      []task.Task
			NextCursor string `json:"next_cursor"`
		}
		a.decode(t, &page)
		if a.status != 200 || pages > 3 {
			t.Fatalf("page %d = %d %s", pages, a.status, a.body)
		}
		seen = append(seen, page.Tasks...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("listed %d QA tasks, want 4", len(seen))
	}
	for i, tk := range seen {
		if tk.Role != task.QA || (i > 0 && tk.CreatedAt.After(seen[i-1].CreatedAt)) {
			t.Fatalf("listing out of order or filter: %+v", seen)
		}
	}
	a := b.get("/api/v1/tasks?state=completed")
	if !bytes.Contains(a.body, []byte(`"tasks":[]`)) || a.status != 200 {
		t.Fatalf("empty listing = %d %s, want tasks []", a.status, a.body)
	}
	for _, c := range []struct{ query, field string }{
		{"state=done", "state"},
		{"role=CEO", "role"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=ten", "limit"},
		{"cursor=%25%25", "cursor"},
		{"cursor=AAAA", "cursor"},
	} {
		a := b.get("/api/v1/tasks?" + c.query)
		if _, field, _ := a.apiErr(); a.status != 422 || field != c.field {
			t.Errorf("?%s = %d %s, want 422 %s", c.query, a.status, a.body, c.field)
		}
	}
	if a := b.get("/api/v1/dead?state=pending"); a.status != 422 {
		t.Errorf("dead with a state = %d", a.status)
	}
}

// kill makes tasks dead: activated once with max_attempts 1 and failed.
func (b *bundle) kill(ts ...task.Task) []task.Task {
	b.t.Helper()
	ctx := context.Background()
	ids := make([]uuid.UUID, len(ts))
	for i := range ts {
		ids[i] = ts[i].ID
	}
	act, err := b.s.Activate(ctx, "w-test", ids)
	if err != nil || len(act) != len(ts) {
		b.t.Fatalf("activating: %v (%d of %d)", err, len(act), len(ts))
	}
	outs := make([]store.Outcome, len(act))
	for i, a := range act {
		outs[i] = store.Outcome{ID: a.ID, Attempt: a.Attempts, Err: "boom"}
	}
	f, err := b.s.Finish(ctx, "w-test", outs)
	if err != nil {
		b.t.Fatalf("finishing: %v", err)
	}
	for _, d := range f.Done {
		if d.State != task.Dead {
			b.t.Fatalf("task %s is %s, want dead", d.ID, d.State)
		}
	}
	return f.Done
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ts []task.Task
	for _, role := range []string{"QA", "QA", "ARCHITECT", "DEVELOPER"} {
		ts = append(ts, b.submit(`{"role":"`+role+`","max_attempts":1}`, 202))
	}
	dead := b.kill(ts...)
	a := b.get("/api/v1/dead?role=QA")
	var page struct{ Tasks []task.Task }
	a.decode(t, &page)
	if a.status != 200 || len(page.Tasks) != 2 || page.Tasks[0].State != task.Dead || page.Tasks[0].LastError != "boom" {
		t.Fatalf("dead list = %d %s", a.status, a.body)
	}
	a = b.post("/api/v1/dead/"+dead[0].ID.String()+"/requeue", "")
	var one struct{ Task task.Task }
	a.decode(t, &one)
	if a.status != 200 || one.Task.State != task.Pending || one.Task.ID != dead[0].ID || one.Task.Attempts != 0 {
		t.Fatalf("requeue one = %d %s", a.status, a.body)
	}
	if a := b.post("/api/v1/dead/"+dead[0].ID.String()+"/requeue", ""); a.status != 404 {
		t.Fatalf("requeue of a pending task = %d %s", a.status, a.body)
	}
	a = b.post("/api/v1/dead/requeue?role=ARCHITECT", "")
	if a.status != 200 || !bytes.Contains(a.body, []byte(`"requeued":1`)) {
		t.Fatalf("requeue ARCHITECT = %d %s", a.status, a.body)
	}
	if a := b.post("/api/v1/dead/requeue?role=CEO", ""); a.status != 422 {
		t.Fatalf("requeue bad role = %d", a.status)
	}
	remaining := []uuid.UUID{}
	for _, d := range dead {
		if got, _ := b.s.Get(context.Background(), d.ID); got.State == task.Dead {
			remaining = append(remaining, d.ID)
		}
	}
	if len(remaining) != 2 {
		t.Fatalf("%d dead left, want 2", len(remaining))
	}
	if a := b.do("DELETE", "/api/v1/dead/"+remaining[0].String(), nil); a.status != 200 || !bytes.Contains(a.body, []byte(`"purged":1`)) {
		t.Fatalf("purge one = %d %s", a.status, a.body)
	}
	if a := b.do("DELETE", "/api/v1/dead", nil); a.status != 200 || !bytes.Contains(a.body, []byte(`"purged":1`)) {
		t.Fatalf("purge all = %d %s", a.status, a.body)
	}
	if a := b.do("DELETE", "/api/v1/dead?role=nope", nil); a.status != 422 {
		t.Fatalf("purge bad role = %d", a.status)
	}
}

func TestStatsAndWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submit(`{"role":"QA"}`, 202)
	b.post("/api/v1/tasks", `{"role":"CEO"}`)
	info, _ := json.Marshal(queue.WorkerInfo{ID: "w1", Roles: []task.Role{task.QA}, RSSBytes: 100, LimitBytes: 1000, HealthScore: 0.9})
	if err := b.q.Heartbeat(context.Background(), "w1", []task.Role{task.QA}, time.Minute, info); err != nil {
		t.Fatal(err)
	}
	meshtest.Eventually(t, 5*time.Second, func() bool {
		var s struct {
			Totals    map[string]int
			Depth     map[string]map[string]int
			Admission struct{ State string }
		}
		_ = json.Unmarshal(b.get("/api/v1/stats").body, &s)
		return s.Totals["submitted"] == 2 && s.Totals["accepted"] == 1 && s.Totals["rejected"] == 1 &&
			s.Depth["QA"]["pending"] == 1 && s.Admission.State == "open"
	}, "stats show the submissions and the depth")
	meshtest.Eventually(t, 5*time.Second, func() bool {
		var w struct{ Workers []queue.WorkerInfo }
		_ = json.Unmarshal(b.get("/api/v1/workers").body, &w)
		return len(w.Workers) == 1 && w.Workers[0].ID == "w1" && w.Workers[0].HealthScore == 0.9
	}, "workers show the heartbeat")
}

func TestHealthMetricsStatic(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if a := b.get("/healthz"); a.status != 200 {
		t.Fatalf("healthz = %d", a.status)
	}
	if a := b.get("/readyz"); a.status != 200 || !bytes.Contains(a.body, []byte(`"redis":"ok"`)) {
		t.Fatalf("readyz = %d %s", a.status, a.body)
	}
	b.submit(`{"role":"QA"}`, 202)
	a := b.get("/metrics")
	for _, want := range []string{
		`agentmesh_tasks_accepted_total{role="QA"} 1`,
		`agentmesh_queue_depth{role="QA",state="pending"} 1`,
		`agentmesh_dead_letters{role="QA"} 0`,
		`agentmesh_http_request_duration_seconds_count{code="202",method="POST",route="/api/v1/tasks"} 1`,
		`go_goroutines`,
	} {
		if !bytes.Contains(a.body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// the dashboard is not built: JSON 404 with a hint
	if a := b.get("/"); a.status != 404 || !bytes.Contains(a.body, []byte("not built")) {
		t.Fatalf("/ without a build = %d %s", a.status, a.body)
	}
}

func TestServesDashboard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := writeFile(dir, name, text); err != nil {
			t.Fatal(err)
		}
	}
	write("index.html", "<!doctype html><title>mesh</title>")
	write("assets/app-1234.js", "console.log(1)")
	b := setup(t, options{cfg: func(c *producer.Config) { c.WebDir = dir }})
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/", 200, "<title>mesh</title>"},
		{"/assets/app-1234.js", 200, "console.log"},
		{"/tasks/123", 200, "<title>mesh</title>"}, // client-side route: index.html
		{"/missing.png", 404, "not_found"},
		{"/api/v1/nope", 404, "not_found"}, // never the SPA fallback
		{"/../../etc/passwd", 200, "<title>mesh</title>"},
	} {
		a := b.get(c.path)
		if a.status != c.status || !bytes.Contains(a.body, []byte(c.want)) {
			t.Errorf("GET %s = %d %.80s, want %d %q", c.path, a.status, a.body, c.status, c.want)
		}
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: func(c *producer.Config) { c.APIToken = "s3cret" }})
	before := b.written()
	for _, c := range []struct {
		method, path, body string
		header             []string
	}{
		{"POST", "/api/v1/tasks", `{"role":"QA"}`, nil},
		{"POST", "/api/v1/tasks", `{"role":"QA"}`, []string{"Authorization", "Bearer wrong"}},
		{"POST", "/api/v1/tasks", `{"role":"QA"}`, []string{"Authorization", "s3cret"}}, // no scheme
		{"POST", "/api/v1/tasks?token=s3cret", `{"role":"QA"}`, nil},                    // query only for WebSockets
		{"POST", "/api/v1/tasks/batch", `{"tasks":[{"role":"QA"}]}`, nil},
		{"POST", "/api/v1/pipelines", `{}`, nil},
		{"PUT", "/api/v1/admission", `{"paused":true}`, nil},
		{"POST", "/api/v1/dead/requeue", ``, nil},
		{"DELETE", "/api/v1/dead", ``, nil},
		{"POST", "/api/v1/simulate", `{"rate":10,"seconds":1}`, nil},
	} {
		a := b.do(c.method, c.path, strings.NewReader(c.body), c.header...)
		if code, _, _ := a.apiErr(); a.status != 401 || code != "unauthorized" || a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s %v = %d %s, want 401", c.method, c.path, c.header, a.status, a.body)
		}
	}
	b.nothingWritten(before, "unauthorized requests")
	if a := b.get("/api/v1/stats"); a.status != 200 {
		t.Errorf("reads need no token: %d", a.status)
	}
	b.submit(`{"role":"QA"}`, 202, "Authorization", "Bearer s3cret")
	b.submit(`{"role":"QA"}`, 202, "Authorization", "bearer s3cret")
}

func TestAdmissionSwitch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if a := b.get("/api/v1/admission"); a.status != 200 || string(bytes.TrimSpace(a.body)) != `{"paused":false}` {
		t.Fatalf("GET admission = %d %s", a.status, a.body)
	}
	if a := b.do("PUT", "/api/v1/admission", strings.NewReader(`{"paused":true}`)); a.status != 200 {
		t.Fatalf("pause = %d %s", a.status, a.body)
	}
	before := b.written()
	a := b.post("/api/v1/tasks", `{"role":"QA"}`)
	if code, _, _ := a.apiErr(); a.status != 503 || code != "unavailable" || a.header.Get("Retry-After") != "5" {
		t.Fatalf("paused submit = %d %v %s", a.status, a.header, a.body)
	}
	if a := b.post("/api/v1/tasks/batch", `{"tasks":[{"role":"QA"}]}`); a.status != 503 {
		t.Fatalf("paused batch = %d", a.status)
	}
	if a := b.post("/api/v1/pipelines", `{}`); a.status != 503 {
		t.Fatalf("paused pipeline = %d", a.status)
	}
	b.nothingWritten(before, "paused submissions")
	if a := b.get("/api/v1/admission"); string(bytes.TrimSpace(a.body)) != `{"paused":true}` {
		t.Fatalf("GET admission = %s", a.body)
	}
	for _, body := range []string{`{}`, `{"paused":"yes"}`} {
		if a := b.do("PUT", "/api/v1/admission", strings.NewReader(body)); a.status != 422 {
			t.Fatalf("PUT %s = %d", body, a.status)
		}
	}
	b.do("PUT", "/api/v1/admission", strings.NewReader(`{"paused":false}`))
	b.submit(`{"role":"QA"}`, 202)
}

func TestSimulate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, body := range []string{`{"rate":0,"seconds":1}`, `{"rate":5001,"seconds":1}`, `{"rate":10,"seconds":301}`,
		`{"rate":10,"seconds":1,"pipeline_fraction":1.5}`} {
		if a := b.post("/api/v1/simulate", body); a.status != 422 {
			t.Errorf("%s = %d %s", body, a.status, a.body)
		}
	}
	a := b.post("/api/v1/simulate", `{"rate":200,"seconds":1,"pipeline_fraction":0.5}`)
	if a.status != 202 || !bytes.Contains(a.body, []byte(`"rate":200`)) {
		t.Fatalf("simulate = %d %s", a.status, a.body)
	}
	if a := b.post("/api/v1/simulate", `{"rate":10,"seconds":1}`); a.status != 409 {
		t.Fatalf("second simulation = %d %s", a.status, a.body)
	}
	meshtest.Eventually(t, 10*time.Second, func() bool { return b.written().rows >= 150 }, "simulated tasks stored")
	meshtest.Eventually(t, 10*time.Second, func() bool {
		return b.post("/api/v1/simulate", `{"rate":1,"seconds":1}`).status == 202
	}, "a new simulation may start once the first ended")
	ctx := context.Background()
	var pipes int
	_ = b.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{b.schema, "tasks"}.Sanitize()+" WHERE pipeline_id IS NOT NULL").Scan(&pipes)
	if pipes == 0 {
		t.Fatal("no simulated pipeline")
	}
}

func writeFile(dir, name, text string) error {
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
