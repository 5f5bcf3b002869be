package worker_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/task"
	"github.com/agentmesh/agentmesh/mesh/worker"
)

// The tests in this file run `mesh worker` as a real process, so they can
// kill it with real signals.

func meshBinary(t testing.TB) string { return meshtest.MeshBinary(t) }

// proc is a `mesh worker` child process.
type proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func (b *bundle) startProcess(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(meshBinary(t), append([]string{"worker", "--metrics-addr", "", "--heartbeat", "100ms"}, args...)...)
	cmd.Env = append(os.Environ(),
		"REDIS_URL="+meshtest.RedisURL(), "DATABASE_URL="+meshtest.DatabaseURL(),
		"MESH_SCHEMA="+b.schema, "MESH_PREFIX="+b.prefix, "MESH_RSS_LIMIT=16GiB")
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
			t.Logf("worker output:\n%s", p.out.String())
		}
	})
	return p
}

// activeCount is how many tasks PostgreSQL has active.
func (b *bundle) activeCount(t testing.TB) int64 {
	c, err := b.s.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, byState := range c {
		n += byState[task.Active]
	}
	return n
}

// TestWorkerSIGKILLLosesNothing kills a worker process mid-task with SIGKILL:
// its lease lapses, the reaper returns its tasks, another worker completes
// them, and each task has exactly one completion.
func TestWorkerSIGKILLLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.watch(t)
	if _, err := b.q.CheckEpoch(context.Background()); err != nil { // an established Redis
		t.Fatal(err)
	}
	all := b.submit(t, false, specs(120, task.Developer, `{"sim":{"work_ms":200}}`)...)
	p := b.startProcess(t, "--roles", "DEVELOPER=16", "--lease", "1s", "--no-maintenance")
	meshtest.Eventually(t, 20*time.Second, func() bool { return b.activeCount(t) >= 16 }, "the worker process has tasks in flight")
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil // for the cleanup
	if b.activeCount(t) == 0 {
		t.Fatal("nothing was in flight when the worker died: the test proves nothing")
	}
	b.start(t, worker.Config{Roles: map[task.Role]int{task.Developer: 64}, LeaseTTL: time.Second, HeartbeatInterval: 100 * time.Millisecond}, true)
	got := b.waitAll(t, len(all), 60*time.Second)
	reRun := 0
	for _, tk := range all {
		g := got[tk.ID]
		if g.State != task.Completed {
			t.Fatalf("task %s ended %s", tk.ID, g.State)
		}
		if g.Attempts > 1 {
			reRun++
		}
	}
	if reRun == 0 {
		t.Fatal("no task needed a second attempt: the kill did not hit in-flight work")
	}
	meshtest.Eventually(t, 5*time.Second, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) == len(all) }, "a completion event per task")
	if d := c.duplicates(); len(d) > 0 {
		t.Fatalf("%d tasks completed twice", len(d))
	}
	t.Logf("%d of %d tasks were recovered from the killed worker and re-run", reRun, len(all))
}

// TestWorkerSIGTERMExitsCleanly sends SIGTERM under load: the process
// finishes its in-flight tasks, leaves nothing active and exits 0; what it
// did not claim is still queued and completes on the next worker.
func TestWorkerSIGTERMExitsCleanly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	all := b.submit(t, false, specs(200, task.QA, `{"sim":{"work_ms":100}}`)...)
	p := b.startProcess(t, "--roles", "QA=16", "--shutdown-timeout", "20s")
	meshtest.Eventually(t, 20*time.Second, func() bool { return b.activeCount(t) >= 16 }, "the worker process has tasks in flight")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not exit within 30 s of SIGTERM")
	}
	if n := b.activeCount(t); n != 0 {
		t.Fatalf("%d tasks left active after a graceful shutdown", n)
	}
	b.start(t, worker.Config{Roles: map[task.Role]int{task.QA: 64}}, false)
	for _, tk := range b.waitAll(t, len(all), 60*time.Second) {
		if tk.State != task.Completed {
			t.Fatalf("task %s ended %s", tk.ID, tk.State)
		}
	}
}
