package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ProcSpec describes a child process.
type ProcSpec struct {
	// Name labels the process in progress lines and results ("worker-2").
	Name string
	// Kind groups processes: producer, worker, loadgen, redis.
	Kind string
	// Path is the executable; Args its arguments (without argv[0]).
	Path string
	Args []string
	// Env is added to the orchestrator's environment.
	Env []string
	// Output receives the process's stdout and stderr (nil: discarded).
	Output io.Writer
	// Stdout, when set, receives stdout instead of Output.
	Stdout io.Writer
}

// Proc is a running child process in a process group of its own, so that a
// signal reaches everything it started and Ctrl-C at the terminal reaches
// only the orchestrator, which then stops its children in order. The
// children also get SIGKILL when the orchestrator dies (Linux parent-death
// signal), so a killed orchestrator leaves no orphans behind.
type Proc struct {
	Spec    ProcSpec
	Started time.Time

	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	exited  time.Time
	waitErr error
	killed  bool
	termAt  time.Time
}

// StartProc starts the process described by spec.
func StartProc(spec ProcSpec) (*Proc, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	out := spec.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if spec.Stdout != nil {
		cmd.Stdout = spec.Stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	p := &Proc{Spec: spec, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exited, p.waitErr = time.Now(), err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (also its process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error (nil: exit status 0) once it exited.
func (p *Proc) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// ExitCode is the exit status, -1 when killed by a signal or still running.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	err := syscall.Kill(-p.Pid(), sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// StopInfo tells how a process stopped.
type StopInfo struct {
	// Took is the time from SIGTERM to exit.
	Took time.Duration
	// Killed is true when the bound passed and the group got SIGKILL.
	Killed bool
	// ExitCode is the exit status (-1: killed by a signal).
	ExitCode int
}

// Stop sends SIGTERM to the process group and waits up to bound for the
// process to exit; then it sends SIGKILL to the group and waits for it.
// Anything else left in the group (grandchildren) gets SIGKILL too.
func (p *Proc) Stop(bound time.Duration) StopInfo {
	start := time.Now()
	p.mu.Lock()
	p.termAt = start
	p.mu.Unlock()
	_ = p.Signal(syscall.SIGTERM)
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.mu.Lock()
		p.killed = true
		p.mu.Unlock()
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
	// The leader exited; reap anything it left in its group.
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	p.mu.Lock()
	defer p.mu.Unlock()
	return StopInfo{Took: p.exited.Sub(start), Killed: p.killed, ExitCode: p.cmd.ProcessState.ExitCode()}
}

func (p *Proc) exitedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

// Procs is the set of processes of one run, stopped together.
type Procs struct {
	mu    sync.Mutex
	procs []*Proc
}

// Add registers p.
func (ps *Procs) Add(p *Proc) {
	ps.mu.Lock()
	ps.procs = append(ps.procs, p)
	ps.mu.Unlock()
}

// List returns the registered processes in start order.
func (ps *Procs) List() []*Proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]*Proc(nil), ps.procs...)
}

// StopAll stops every running process, kinds in the given order (senders
// before receivers: loadgen, producer, worker, then the backends), each
// kind's processes in parallel, each with bound; kinds not listed go last.
func (ps *Procs) StopAll(bound time.Duration, order ...string) map[*Proc]StopInfo {
	out := map[*Proc]StopInfo{}
	var mu sync.Mutex
	stopKind := func(match func(string) bool) {
		var wg sync.WaitGroup
		for _, p := range ps.List() {
			if !match(p.Spec.Kind) || p.Exited() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				info := p.Stop(bound)
				mu.Lock()
				out[p] = info
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	for _, k := range order {
		stopKind(func(kind string) bool { return kind == k })
	}
	stopKind(func(string) bool { return true })
	return out
}
