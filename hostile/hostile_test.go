// Package hostile holds the hostile-input suite: a real `mesh producer`
// child process on the shared Redis and PostgreSQL (its own schema and key
// prefix) gets oversized, slow, malformed, malicious and unauthorised
// requests, and thousands of idle WebSockets. Each must get a precise JSON
// error with the right status and change nothing; memory must stay bounded
// (the producer's RSS is read from /proc/<pid>/status).
package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentmesh/agentmesh/chaos"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
)

const token = "s3cret-token-for-the-hostile-suite"

func meshBinary(t testing.TB) string { return meshtest.MeshBinary(t) }

// mesh is a producer child process with its own schema and prefix.
type mesh struct {
	base string
	pid  int
	pool *pgxpool.Pool
	out  *bytes.Buffer
}

// startProducer starts `mesh producer` with a token and the given extra flags.
func startProducer(t *testing.T, extra ...string) *mesh {
	t.Helper()
	_, prefix := meshtest.Redis(t)
	pool, schema := meshtest.Postgres(t)
	addr := "127.0.0.1:" + strconv.Itoa(meshtest.FreePort(t))
	args := append([]string{"producer", "--addr", addr, "--web-dir", t.TempDir(), "--log-level", "warn"}, extra...)
	cmd := exec.Command(meshBinary(t), args...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+meshtest.RedisURL(), "DATABASE_URL="+meshtest.DatabaseURL(),
		"MESH_SCHEMA="+schema, "MESH_PREFIX="+prefix, "MESH_API_TOKEN="+token)
	m := &mesh{base: "http://" + addr, pool: pool, out: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = m.out, m.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("producer output:\n%s", m.out.String())
		}
	})
	meshtest.Eventually(t, 60*time.Second, func() bool {
		resp, err := http.Get(m.base + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}, "producer /readyz")
	return m
}

func (m *mesh) rss(t testing.TB) uint64 {
	t.Helper()
	v, err := chaos.RSS(m.pid)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// state is what a request could change: the task rows and their states.
func (m *mesh) state(t testing.TB) string {
	t.Helper()
	var s string
	err := m.pool.QueryRow(context.Background(),
		`SELECT count(*)::text || '/' || coalesce(string_agg(DISTINCT state, ','), '') FROM tasks`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apiErr is the producer's error body.
type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// do sends one request and decodes a JSON error body when there is one.
func (m *mesh) do(t testing.TB, method, path, ctype, auth string, body io.Reader) (int, apiErr, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, m.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var e apiErr
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s %s: status %d without a precise JSON error: %q", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, e, resp.Header
}

// TestBadInputChangesNothing sends each hostile request and checks its
// status, its error code, and that the tasks table did not change.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	m := startProducer(t, "--max-batch", "1000")
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	var huge strings.Builder
	huge.WriteString(`{"tasks":[`)
	for i := range 1001 {
		if i > 0 {
			huge.WriteString(",")
		}
		huge.WriteString(`{"role":"QA"}`)
	}
	huge.WriteString("]}")
	const js = "application/json"
	cases := []struct {
		name, method, path, ctype, auth, body string
		status                                int
		code                                  string
	}{
		// Invalid UTF-8 inside a JSON string.
		{"invalid utf-8", "POST", "/api/v1/tasks", js, token, "{\"role\":\"QA\",\"payload\":{\"x\":\"\xff\xfe\"}}", 400, "bad_json"},
		// 10,000 levels of objects: refused before it is decoded.
		{"deep nesting", "POST", "/api/v1/tasks", js, token, deep, 400, "bad_json"},
		{"trailing data", "POST", "/api/v1/tasks", js, token, `{"role":"QA"} {"role":"QA"}`, 400, "bad_json"},
		{"not an object", "POST", "/api/v1/tasks", js, token, `[1,2,3]`, 400, "bad_json"},
		// SQL metacharacters in a role: a validation error, never SQL.
		{"sql in role", "POST", "/api/v1/tasks", js, token, `{"role":"QA'; DROP TABLE tasks;--"}`, 422, "validation"},
		{"sql in state filter", "GET", "/api/v1/tasks?state=" + urlEsc(`pending' OR '1'='1`), "", "", "", 422, "validation"},
		{"sql in role filter", "GET", "/api/v1/tasks?role=" + urlEsc(`QA"; SELECT pg_sleep(10);--`), "", "", "", 422, "validation"},
		{"sql in cursor", "GET", "/api/v1/tasks?cursor=" + urlEsc(`' UNION SELECT * FROM pg_user--`), "", "", "", 422, "validation"},
		{"limit overflow", "GET", "/api/v1/tasks?limit=99999999999999999999", "", "", "", 422, "validation"},
		{"bad id", "GET", "/api/v1/tasks/not-a-uuid", "", "", "", 422, "validation"},
		{"bad id with sql", "GET", "/api/v1/tasks/" + urlEsc(`1' OR '1'='1`), "", "", "", 422, "validation"},
		{"unknown id", "GET", "/api/v1/tasks/01890000-0000-7000-8000-000000000000", "", "", "", 404, "not_found"},
		{"requeue bad id", "POST", "/api/v1/dead/zzz/requeue", js, token, "", 422, "validation"},
		// 1001 tasks in a batch of at most 1000: all or nothing.
		{"huge batch", "POST", "/api/v1/tasks/batch", js, token, huge.String(), 422, "validation"},
		{"unknown field", "POST", "/api/v1/tasks", js, token, `{"role":"QA","evil":true}`, 422, "validation"},
		{"wrong content type", "POST", "/api/v1/tasks", "text/plain", token, `{"role":"QA"}`, 415, "unsupported_media_type"},
		{"no token", "POST", "/api/v1/tasks", js, "", `{"role":"QA"}`, 401, "unauthorized"},
		{"unknown path", "GET", "/api/v1/../../etc/passwd", "", "", "", 404, "not_found"},
		{"wrong method", "DELETE", "/api/v1/stats", "", token, "", 405, "method_not_allowed"},
	}
	before := m.state(t)
	for _, c := range cases {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		status, e, _ := m.do(t, c.method, c.path, c.ctype, c.auth, body)
		if status != c.status || e.Error.Code != c.code {
			t.Errorf("%s: got %d %q (%s), want %d %q", c.name, status, e.Error.Code, e.Error.Message, c.status, c.code)
		}
	}
	if after := m.state(t); after != before {
		t.Errorf("bad input changed the tasks: %s → %s", before, after)
	}
	// SQL metacharacters in a payload are data: stored and returned verbatim.
	payload := `{"q":"'; DROP TABLE tasks; --","b":"\\\\x00 $1 %s"}`
	status, _, _ := m.do(t, "POST", "/api/v1/tasks", js, token, strings.NewReader(`{"role":"QA","payload":`+payload+`}`))
	if status != 202 {
		t.Fatalf("task with SQL metacharacters in its payload: %d, want 202", status)
	}
	var got string
	if err := m.pool.QueryRow(context.Background(), `SELECT payload->>'q' FROM tasks`).Scan(&got); err != nil || got != "'; DROP TABLE tasks; --" {
		t.Errorf("payload stored as %q (%v)", got, err)
	}
}

func urlEsc(s string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "'", "%27", "\"", "%22", ";", "%3B", "=", "%3D", "/", "%2F", "#", "%23", "&", "%26", "*", "%2A")
	return r.Replace(s)
}

// TestTokenGuessing: every wrong token gets 401, nothing is written, and
// the right one still works.
func TestTokenGuessing(t *testing.T) {
	t.Parallel()
	m := startProducer(t)
	before := m.state(t)
	guesses := []string{"", "x", token[:len(token)-1], token + "x", strings.ToUpper(token), token[1:] + "s", strings.Repeat("a", 10000)}
	for i := range 200 {
		guesses = append(guesses, fmt.Sprintf("guess-%d-%s", i, token[:i%len(token)]))
	}
	for _, g := range guesses {
		status, e, h := m.do(t, "POST", "/api/v1/tasks", "application/json", g, strings.NewReader(`{"role":"QA"}`))
		if g == "" {
			// An empty bearer is the same as none.
			status, e, h = m.do(t, "POST", "/api/v1/tasks", "application/json", "", strings.NewReader(`{"role":"QA"}`))
		}
		if status != 401 || e.Error.Code != "unauthorized" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("token %.20q: got %d %q, want 401 unauthorized with WWW-Authenticate", g, status, e.Error.Code)
		}
	}
	if after := m.state(t); after != before {
		t.Errorf("wrong tokens changed the tasks: %s → %s", before, after)
	}
	if status, _, _ := m.do(t, "POST", "/api/v1/tasks", "application/json", token, strings.NewReader(`{"role":"QA"}`)); status != 202 {
		t.Errorf("the right token: %d, want 202", status)
	}
}

// zeros is an endless-enough reader of n bytes of 'a', so a 100 MB body is
// streamed, never held in memory.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	for i := range p[:k] {
		p[i] = 'a'
	}
	z.n -= k
	return int(k), nil
}

// TestHugeBodyRejectedWithBoundedMemory streams a 100 MB body: 413 while
// reading, and the producer's RSS barely moves.
func TestHugeBodyRejectedWithBoundedMemory(t *testing.T) {
	t.Parallel()
	m := startProducer(t)
	before := m.rss(t)
	stateBefore := m.state(t)
	const size = 100 << 20
	body := io.MultiReader(strings.NewReader(`{"role":"QA","payload":{"x":"`), &zeros{n: size}, strings.NewReader(`"}}`))
	req, _ := http.NewRequest("POST", m.base+"/api/v1/tasks", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.ContentLength = size + 32
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The server may close the connection while we still write; then
		// the refusal must be visible on a fresh request's side: nothing
		// written, memory bounded (checked below).
		t.Logf("100 MB body: the server cut the upload: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var e apiErr
		if resp.StatusCode != 413 || json.Unmarshal(b, &e) != nil || e.Error.Code != "too_large" {
			t.Errorf("100 MB body: %d %q, want 413 too_large", resp.StatusCode, b)
		}
	}
	after := m.rss(t)
	t.Logf("producer RSS before %d KiB, after a 100 MB body %d KiB", before>>10, after>>10)
	if after > before+32<<20 {
		t.Errorf("producer RSS grew by %d MiB on a refused 100 MB body", (after-before)>>20)
	}
	if got := m.state(t); got != stateBefore {
		t.Errorf("the refused body changed the tasks: %s → %s", stateBefore, got)
	}
}

// TestSlowClientsTimeOut: a client that never finishes its headers
// (slowloris) is disconnected by the server's ReadHeaderTimeout (5 s, not a
// flag), and one that stalls mid-body by its ReadTimeout (30 s).
func TestSlowClientsTimeOut(t *testing.T) {
	t.Parallel()
	m := startProducer(t)
	addr := strings.TrimPrefix(m.base, "http://")
	closed := func(c net.Conn, within time.Duration) (string, bool) {
		_ = c.SetReadDeadline(time.Now().Add(within))
		b, err := io.ReadAll(bufio.NewReader(c))
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			return string(b), false
		}
		return string(b), true
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		if _, ok := closed(c, 30*time.Second); !ok {
			t.Error("slow-header client still connected after 30 s")
		}
	}()
	go func() {
		defer wg.Done()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer "+token+"\r\nContent-Length: 1000\r\n\r\n{\"role\":")
		out, ok := closed(c, 60*time.Second)
		if !ok {
			t.Error("slow-body client still connected after 60 s")
		}
		if out != "" && !strings.Contains(out, " 400 ") && !strings.Contains(out, " 408 ") && !strings.Contains(out, " 413 ") {
			t.Errorf("slow body answered %q", out)
		}
	}()
	wg.Wait()
	if got := m.state(t); got != "0/" {
		t.Errorf("slow clients changed the tasks: %s", got)
	}
}
