package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/agentmesh/agentmesh/deploy"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
)

// TestLive proves the dashboards against a real mesh: it builds cmd/mesh,
// runs `mesh dev` (producer and workers in one process) on loopback ports
// with a schema and key prefix of its own, a real Prometheus (Debian's 2.42)
// scraping it every second, `mesh loadgen`, and a load of its own that makes
// every series the panels show exist for real — rejections (an invalid
// priority, a paused admission), dead letters (tasks whose payload asks every
// attempt to fail), retries, pipelines, a WebSocket client. Then it sends
// every panel target's expression, with Grafana's variables expanded, to
// Prometheus's query API and requires success and at least one sample that
// is a number. promtool check metrics lints each process's /metrics.
//
// It needs Redis and PostgreSQL (TEST_REDIS_URL, TEST_DATABASE_URL, as every
// package's tests) and the prometheus package. AGENTMESH_LIVE_MESH names a
// prebuilt mesh binary to use instead of building ./cmd/mesh. Until cmd/mesh has a `dev`
// command it skips, saying so; from then on it runs by default (-short skips).
func TestLive(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("live dashboard test: skipped with -short")
	}
	promBin := requireTool(t, "prometheus", "prometheus")
	promtool := requireTool(t, "promtool", "prometheus")
	mesh := os.Getenv("AGENTMESH_LIVE_MESH") // a prebuilt binary (e.g. built with -race), else build one
	if mesh == "" {
		mesh = buildMesh(t)
	}
	if !hasCommand(t, mesh, "dev") {
		t.Skip("cmd/mesh has no `dev` command yet: the live dashboard test starts running once it does")
	}
	withLoadgen := hasCommand(t, mesh, "loadgen")

	st := startStack(t, mesh, promBin, promtool, withLoadgen)
	st.scenario(t)
	st.waitScenarioScraped(t, withLoadgen)

	dashboards := loadDashboards(t)
	checks := st.pollPanels(t, dashboards, withLoadgen)
	for _, c := range checks {
		t.Run(c.name(), func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			if c.err != "" {
				t.Errorf("%s\nexpr: %s", c.err, c.expr)
			}
		})
	}
	st.checkVariables(t, dashboards, withLoadgen)
	for job, addr := range st.metricsEndpoints() {
		t.Run("promtool check metrics/"+job, func(t *testing.T) {
			promtoolCheckMetrics(t, st.client, promtool, "http://"+addr+"/metrics")
		})
	}
}

// Fixed figures of the live run.
const (
	liveScrape     = time.Second
	liveRateWindow = "15s" // $__rate_interval: 15 scrapes, and the load keeps running
	liveRange      = "5m"  // $__range
	liveWait       = 2 * time.Minute
	liveRole       = "ARCHITECT" // the concrete $role value also tried
)

// buildMesh builds ./cmd/mesh into a temporary directory.
func buildMesh(t *testing.T) string {
	t.Helper()
	goBin := requireTool(t, "go", "golang")
	bin := filepath.Join(t.TempDir(), "mesh")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/mesh")
	cmd.Dir = repoPath()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/mesh: %v\n%s", err, out)
	}
	return bin
}

// hasCommand reports whether `mesh <name>` exists (main answers an unknown
// command with `unknown command "<name>"`).
func hasCommand(t *testing.T, mesh, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, mesh, name, "--help").CombinedOutput()
	return !strings.Contains(string(out), fmt.Sprintf("unknown command %q", name))
}

// loopback returns a free 127.0.0.1:port.
func loopback(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(meshtest.FreePort(t)))
}

// proc is a process the test started; it is stopped (SIGTERM, then SIGKILL)
// when the test ends, and its output is logged if the test failed.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(t.TempDir(), "output.log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not exit within 30s of SIGTERM; killing it", name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		_ = f.Close()
		if t.Failed() {
			t.Logf("--- %s (%s) output, last 6 KB ---\n%s", name, strings.Join(p.cmd.Args, " "), tail(p.log, 6<<10))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// waitHTTP polls url until it answers 200, failing early if p exits.
func waitHTTP(t *testing.T, p *proc, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	for {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if p.exited() {
			t.Fatalf("%s exited before %s answered (%v)\n%s", p.name, url, err, tail(p.log, 6<<10))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s: %v", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stack is the running mesh, load generator and Prometheus of one test.
type stack struct {
	api, metrics, loadgen, prom string
	client                      *http.Client
}

// meshEnv is the test's environment without any mesh setting, plus the
// shared test backends and this test's own schema and key prefix.
func meshEnv(schema, prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "REDIS_URL" || k == "DATABASE_URL" || strings.HasPrefix(k, "MESH_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "REDIS_URL="+meshtest.RedisURL(), "DATABASE_URL="+meshtest.DatabaseURL(),
		"MESH_SCHEMA="+schema, "MESH_PREFIX="+prefix, "MESH_LOG_LEVEL=warn")
}

func startStack(t *testing.T, mesh, promBin, promtool string, withLoadgen bool) *stack {
	t.Helper()
	_, prefix := meshtest.Redis(t)    // keys deleted when the test ends
	_, schema := meshtest.Postgres(t) // schema dropped when the test ends
	env := meshEnv(schema, prefix)
	st := &stack{api: loopback(t), metrics: loopback(t), prom: loopback(t),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	t.Cleanup(st.client.CloseIdleConnections)

	dev := startProc(t, "mesh dev", env, mesh, "dev", "--addr", st.api, "--metrics-addr", st.metrics)
	waitHTTP(t, dev, "http://"+st.api+"/readyz", time.Minute)
	waitHTTP(t, dev, "http://"+st.metrics+"/metrics", 10*time.Second)

	scrape := deploy.LocalScrape{Producer: []string{st.api}, Worker: []string{st.metrics}, ScrapeInterval: liveScrape}
	if withLoadgen {
		st.loadgen = loopback(t)
		scrape.Loadgen = []string{st.loadgen}
		// A long schedule: its /metrics must outlive the queries (a target that
		// disappears has its series marked stale at once). Stopped at cleanup.
		lg := startProc(t, "mesh loadgen", env, mesh, "loadgen", "--target", "http://"+st.api,
			"--rate", "100", "--duration", "10m", "--pipelines", "0.2", "--metrics-addr", st.loadgen, "--quiet")
		waitHTTP(t, lg, "http://"+st.loadgen+"/metrics", 30*time.Second)
	}
	cfg, err := deploy.LocalPrometheus(scrape)
	if err != nil {
		t.Fatal(err)
	}
	promtoolCheckConfig(t, promtool, "live", cfg)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// Classic histograms only: Prometheus 2.42 with native histograms enabled
	// would keep just the native form of a histogram that exposes both.
	prom := startProc(t, "prometheus", os.Environ(), promBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+st.prom, "--log.level=warn")
	waitHTTP(t, prom, "http://"+st.prom+"/-/ready", time.Minute)
	return st
}

func (st *stack) metricsEndpoints() map[string]string {
	m := map[string]string{deploy.JobProducer: st.api, deploy.JobWorker: st.metrics}
	if st.loadgen != "" {
		m[deploy.JobLoadgen] = st.loadgen
	}
	return m
}

// do sends a JSON request to the producer and returns the status code.
func (st *stack) do(t *testing.T, method, path string, body any) int {
	t.Helper()
	code, err := st.send(context.Background(), method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return code
}

func (st *stack) send(ctx context.Context, method, path string, body any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+st.api+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := st.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// failing is a payload every attempt of which fails (mesh/worker's "sim").
var failing = json.RawMessage(`{"sim":{"fail":true}}`)

type spec struct {
	Role        string          `json:"role"`
	Priority    *int            `json:"priority,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
}

var roles = []string{"ARCHITECT", "DEVELOPER", "QA"}

// scenario makes every kind of series the dashboards show exist for real,
// then keeps a steady load running until the test ends.
func (st *stack) scenario(t *testing.T) {
	t.Helper()
	bad := 9
	if code := st.do(t, http.MethodPost, "/api/v1/tasks", spec{Role: liveRole, Priority: &bad}); code != http.StatusUnprocessableEntity {
		t.Fatalf("a task with priority 9: status %d, want 422", code)
	}
	if code := st.do(t, http.MethodPut, "/api/v1/admission", map[string]bool{"paused": true}); code != http.StatusOK {
		t.Fatalf("pausing admission: status %d", code)
	}
	code := st.do(t, http.MethodPost, "/api/v1/tasks", spec{Role: liveRole})
	if st.do(t, http.MethodPut, "/api/v1/admission", map[string]bool{"paused": false}) != http.StatusOK {
		t.Fatal("resuming admission failed")
	}
	if code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
		t.Fatalf("a task while admission is paused: status %d, want 503 or 429", code)
	}
	var dead []spec
	for _, r := range roles {
		dead = append(dead, spec{Role: r, Payload: failing, MaxAttempts: 2}) // failed once, then dead
	}
	if code := st.do(t, http.MethodPost, "/api/v1/tasks/batch", map[string]any{"tasks": dead}); code != http.StatusAccepted {
		t.Fatalf("submitting failing tasks: status %d, want 202", code)
	}
	st.watchWebSocket(t)
	st.steadyLoad(t)
}

// watchWebSocket keeps a dashboard client on /ws, reading every frame.
func (st *stack) watchWebSocket(t *testing.T) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+st.api+"/ws", nil)
	if err != nil {
		t.Fatalf("connecting to /ws: %v", err)
	}
	_ = resp.Body.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done })
}

// steadyLoad submits batches of every role (and now and then a pipeline and
// a failing batch) every 20 ms until the test ends, so rate() windows hold
// fresh observations whenever the panels are queried.
func (st *stack) steadyLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unexpected []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			path, body := "/api/v1/tasks/batch", any(nil)
			switch {
			case i%50 == 25:
				body = map[string]any{"tasks": []spec{{Role: roles[i%3], Payload: failing, MaxAttempts: 2}}}
			case i%10 == 5:
				path, body = "/api/v1/pipelines", map[string]any{"payload": map[string]int{"n": i}}
			default:
				var batch []spec
				for j := range 9 {
					batch = append(batch, spec{Role: roles[j%3], Payload: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
				}
				body = map[string]any{"tasks": batch}
			}
			code, err := st.send(ctx, http.MethodPost, path, body)
			if ctx.Err() != nil {
				return
			}
			if err != nil || (code != http.StatusAccepted && code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable) {
				mu.Lock()
				if len(unexpected) < 5 {
					unexpected = append(unexpected, fmt.Sprintf("POST %s: status %d, err %v", path, code, err))
				}
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(unexpected) > 0 {
			t.Errorf("the steady load got unexpected answers: %q", unexpected)
		}
	})
}

// promResult is the data of a /api/v1/query answer.
type promResult struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func (st *stack) query(expr string) (promResult, error) {
	var r promResult
	resp, err := st.client.Get("http://" + st.prom + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("decoding the answer (%s): %w", resp.Status, err)
	}
	return r, nil
}

// scalar runs expr and returns its single value (NaN when empty).
func (st *stack) scalar(expr string) float64 {
	r, err := st.query(expr)
	if err != nil || r.Status != "success" || len(r.Data.Result) == 0 {
		return math.NaN()
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// waitScenarioScraped waits until Prometheus has scraped the scenario's
// effects: every target up, the rejections, the dead letters, completions of
// every role, and the load generator's accepted requests.
func (st *stack) waitScenarioScraped(t *testing.T, withLoadgen bool) {
	t.Helper()
	conds := map[string]string{
		"every target up":              fmt.Sprintf(`count(up == 1) >= %d`, len(st.metricsEndpoints())),
		"rejections (invalid, paused)": fmt.Sprintf(`sum(agentmesh_tasks_rejected_total{role=%q}) >= 2`, liveRole),
		"a dead task of every role":    `count(sum by (role) (agentmesh_worker_tasks_total{outcome="dead"}) >= 1) >= 3`,
		"completions of every role":    `count(sum by (role) (agentmesh_worker_tasks_total{outcome="completed"}) >= 1) >= 3`,
		"failed attempts":              `sum(agentmesh_worker_tasks_total{outcome="failed"}) >= 3`,
	}
	if withLoadgen {
		conds["loadgen accepted requests"] = `sum(agentmesh_loadgen_requests_total{outcome="accepted"}) > 0`
	}
	deadline := time.Now().Add(liveWait)
	for {
		var missing []string
		for name, expr := range conds {
			if math.IsNaN(st.scalar(expr)) {
				missing = append(missing, name+": "+expr)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(missing)
			t.Fatalf("Prometheus did not see the scenario within %s:\n  %s", liveWait, strings.Join(missing, "\n  "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// panelCheck is the outcome of one panel target's query.
type panelCheck struct {
	target
	role, expr, err, skip string
}

func (c panelCheck) name() string {
	n := fmt.Sprintf("%s/%d %s/%s", strings.TrimSuffix(c.file, ".json"), c.panelID, c.panel, c.refID)
	if c.role != "" {
		n += "/role=" + c.role
	}
	return n
}

// expand replaces Grafana's variables the way Grafana would for the live
// run: All (.*) for the template variables unless vars says otherwise.
func expand(expr string, vars map[string]string) string {
	return variables.ReplaceAllStringFunc(expr, func(m string) string {
		s := variables.FindStringSubmatch(m)
		if v, ok := vars[s[1]+s[2]+s[3]]; ok {
			return v
		}
		return m // left as is: Prometheus reports the parse error
	})
}

// pollPanels queries every target (with $role = All, and with $role =
// liveRole where the expression uses it) until all pass or liveWait runs out,
// and returns the last outcome of each.
func (st *stack) pollPanels(t *testing.T, dashboards []dashFile, withLoadgen bool) []panelCheck {
	t.Helper()
	base := map[string]string{"role": ".*", "instance": ".*", "__rate_interval": liveRateWindow,
		"__interval": promDuration(liveScrape), "__range": liveRange}
	var checks []panelCheck
	for _, f := range dashboards {
		for _, tg := range targetsOf(f) {
			variants := []string{""}
			if slices.Contains(variablesUsed(tg.expr), "role") {
				variants = append(variants, liveRole)
			}
			for _, role := range variants {
				vars := maps.Clone(base)
				if role != "" {
					vars["role"] = role
				}
				c := panelCheck{target: tg, role: role, expr: expand(tg.expr, vars)}
				if !withLoadgen && strings.Contains(tg.expr, "agentmesh_loadgen_") {
					c.skip = "cmd/mesh has no loadgen command yet: nothing exposes agentmesh_loadgen_* metrics"
				}
				checks = append(checks, c)
			}
		}
	}
	deadline := time.Now().Add(liveWait)
	for {
		failing := 0
		for i := range checks {
			c := &checks[i]
			if c.skip != "" {
				continue
			}
			c.err = st.check(c.expr)
			if c.err != "" {
				failing++
			}
		}
		if failing == 0 || time.Now().After(deadline) {
			return checks
		}
		time.Sleep(time.Second)
	}
}

// check runs one expression and says what is wrong with its answer, if anything.
func (st *stack) check(expr string) string {
	r, err := st.query(expr)
	switch {
	case err != nil:
		return err.Error()
	case r.Status != "success":
		return fmt.Sprintf("status %q: %s: %s", r.Status, r.ErrorType, r.Error)
	case len(r.Data.Result) == 0:
		return "empty result: the panel would show no data"
	}
	for _, s := range r.Data.Result {
		if v, _ := s.Value[1].(string); v != "NaN" {
			return ""
		}
	}
	return fmt.Sprintf("every one of the %d series is NaN (no observations in the window?)", len(r.Data.Result))
}

// checkVariables requires every template variable's label_values query to
// find values, as Grafana's dropdown would.
func (st *stack) checkVariables(t *testing.T, dashboards []dashFile, withLoadgen bool) {
	for _, f := range dashboards {
		for _, v := range variablesOf(t, f) {
			t.Run(fmt.Sprintf("%s/variable %s", strings.TrimSuffix(f.name, ".json"), v.name), func(t *testing.T) {
				if !withLoadgen && strings.Contains(v.selector, "agentmesh_loadgen_") {
					t.Skip("cmd/mesh has no loadgen command yet")
				}
				vals, err := st.labelValues(v.selector, v.label)
				if err != nil {
					t.Fatal(err)
				}
				if len(vals) == 0 {
					t.Errorf("label_values(%s, %s) found nothing", v.selector, v.label)
				}
				if v.name == "role" && !slices.Contains(vals, liveRole) {
					t.Errorf("role values %q lack %s", vals, liveRole)
				}
			})
		}
	}
}

func (st *stack) labelValues(selector, label string) ([]string, error) {
	resp, err := st.client.Get("http://" + st.prom + "/api/v1/series?match[]=" + url.QueryEscape(selector))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string              `json:"status"`
		Error  string              `json:"error"`
		Data   []map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("series %s: %s", selector, r.Error)
	}
	var vals []string
	for _, s := range r.Data {
		if v := s[label]; v != "" && !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	slices.Sort(vals)
	return vals, nil
}

// promtoolCheckMetrics lints one /metrics page (text format) with promtool.
func promtoolCheckMetrics(t *testing.T, client *http.Client, promtool, url string) {
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics %s: %v\n%s", url, err, out)
	}
}

// promDuration renders d as PromQL writes durations (1s, 250ms).
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	return strconv.Itoa(int(d/time.Millisecond)) + "ms"
}
