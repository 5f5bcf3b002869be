package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// startMesh runs `mesh <args>` as a child process on the bundle's schema and
// prefix, killed when the test ends.
func (b *bundle) startMesh(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(meshBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"REDIS_URL="+meshtest.RedisURL(), "DATABASE_URL="+meshtest.DatabaseURL(),
		"MESH_SCHEMA="+b.schema, "MESH_PREFIX="+b.prefix, "MESH_RSS_LIMIT=16GiB", "MESH_LOG_LEVEL=warn")
	p := &proc{cmd: cmd, out: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("mesh %s output:\n%s", args[0], p.out.String())
		}
	})
	return p
}

// TestManyProducersAndWorkers runs two producer processes and three worker
// processes against one Redis and one PostgreSQL, with no coordination
// beyond them: submissions alternate between the producers, and the audit
// requires every accepted task completed exactly once, work spread over all
// three workers, unique worker ids, and every worker visible through both
// producers.
func TestManyProducersAndWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.watch(t)
	var addrs []string
	for range 2 {
		addr := "127.0.0.1:" + strconv.Itoa(meshtest.FreePort(t))
		b.startMesh(t, "producer", "--addr", addr, "--web-dir", t.TempDir())
		addrs = append(addrs, "http://"+addr)
	}
	for range 3 {
		b.startMesh(t, "worker", "--metrics-addr", "", "--heartbeat", "200ms", "--concurrency", "8", "--work", "2ms")
	}
	for _, a := range addrs {
		meshtest.Eventually(t, 30*time.Second, func() bool {
			res, err := http.Get(a + "/readyz")
			if err != nil {
				return false
			}
			_ = res.Body.Close()
			return res.StatusCode == http.StatusOK
		}, "producer %s ready", a)
	}
	// Every worker is visible through every producer.
	for _, a := range addrs {
		meshtest.Eventually(t, 20*time.Second, func() bool { return len(workerIDs(t, a)) == 3 }, "3 workers seen by %s", a)
	}

	const perBatch, batches = 50, 12
	var mu sync.Mutex
	var accepted []uuid.UUID
	var wg sync.WaitGroup
	for i := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := submitBatch(t, addrs[i%len(addrs)], perBatch, task.Roles[i%len(task.Roles)])
			mu.Lock()
			accepted = append(accepted, ids...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(accepted) != perBatch*batches {
		t.Fatalf("accepted %d of %d", len(accepted), perBatch*batches)
	}
	got := b.waitAll(t, len(accepted), 60*time.Second)
	byWorker := map[string]int{}
	for _, id := range accepted {
		g := got[id]
		if g.State != task.Completed {
			t.Fatalf("task %s ended %s", id, g.State)
		}
		byWorker[g.WorkerID]++
	}
	if len(byWorker) != 3 {
		t.Fatalf("work went to %d workers, want all 3: %v", len(byWorker), byWorker)
	}
	meshtest.Eventually(t, 10*time.Second, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) == len(accepted) },
		"a completion event per task")
	if d := c.duplicates(); len(d) > 0 {
		t.Fatalf("%d tasks completed twice", len(d))
	}
	t.Logf("%d tasks through 2 producers and 3 workers: %v", len(accepted), byWorker)
}

func workerIDs(t *testing.T, base string) map[string]bool {
	res, err := http.Get(base + "/api/v1/workers")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var body struct {
		Workers []struct {
			ID string `json:"id"`
		} `json:"workers"`
	}
	if json.NewDecoder(res.Body).Decode(&body) != nil {
		return nil
	}
	ids := map[string]bool{}
	for _, w := range body.Workers {
		ids[w.ID] = true
	}
	return ids
}

func submitBatch(t *testing.T, base string, n int, role task.Role) []uuid.UUID {
	specs := make([]string, n)
	for i := range specs {
		specs[i] = fmt.Sprintf(`{"role":%q,"payload":{"i":%d}}`, role, i)
	}
	body := `{"tasks":[` + strings.Join(specs, ",") + `]}`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/tasks/batch", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("submitting to %s: %v", base, err)
		return nil
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted {
		t.Errorf("submitting to %s: %d %s", base, res.StatusCode, raw)
		return nil
	}
	var out struct {
		Tasks []task.Task `json:"tasks"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Errorf("decoding %s: %v", raw, err)
		return nil
	}
	ids := make([]uuid.UUID, len(out.Tasks))
	for i, tk := range out.Tasks {
		ids[i] = tk.ID
	}
	return ids
}
