package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runHelper is the child process of the tests: "ignore-term" ignores
// SIGTERM, starts a grandchild that does too, prints both pids and waits;
// "exit-on-term" exits 0 on SIGTERM.
func runHelper(mode string) int {
	switch mode {
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		if os.Getenv("BENCH_TEST_GRANDCHILD") == "" {
			exe, _ := os.Executable()
			p, err := os.StartProcess(exe, []string{exe}, &os.ProcAttr{
				Env:   append(os.Environ(), "BENCH_TEST_GRANDCHILD=1"),
				Files: []*os.File{nil, nil, os.Stderr}})
			if err != nil {
				return 3
			}
			fmt.Printf("%d %d\n", os.Getpid(), p.Pid)
		}
		select {}
	case "exit-on-term":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		return 0
	}
	return 2
}

func startHelper(t *testing.T, mode string) (*Proc, *bufio.Reader) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	p, err := StartProc(ProcSpec{Name: mode, Kind: "test", Path: exe, Args: []string{"-test.run=^$"},
		Env: []string{"BENCH_TEST_HELPER=" + mode}, Stdout: pw, Output: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); _ = pw.Close(); _ = pr.Close() })
	return p, bufio.NewReader(pr)
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie (state Z) is dead, waiting for its parent.
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	p, out := startHelper(t, "ignore-term")
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("helper said %q", line)
	}
	child, _ := strconv.Atoi(f[0])
	grandchild, _ := strconv.Atoi(f[1])
	if child != p.Pid() || !alive(grandchild) {
		t.Fatalf("pids %d %d (proc %d)", child, grandchild, p.Pid())
	}
	bound := 300 * time.Millisecond
	info := p.Stop(bound)
	if !info.Killed || info.Took < bound || info.ExitCode != -1 {
		t.Errorf("stop %+v: want killed after %s", info, bound)
	}
	if !p.Exited() {
		t.Error("not exited")
	}
	// The grandchild shared the process group: it got SIGKILL too. It is
	// reparented to init, which reaps it; wait for that.
	deadline := time.Now().Add(5 * time.Second)
	for alive(grandchild) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived its group's SIGKILL (an orphan)", grandchild)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopGraceful(t *testing.T) {
	t.Parallel()
	p, out := startHelper(t, "exit-on-term")
	if _, err := out.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	info := p.Stop(10 * time.Second)
	if info.Killed || info.ExitCode != 0 {
		t.Errorf("stop %+v: want a clean exit", info)
	}
}

func TestStopAllInOrder(t *testing.T) {
	t.Parallel()
	var ps Procs
	a, outA := startHelper(t, "exit-on-term")
	b, outB := startHelper(t, "exit-on-term")
	a.Spec.Kind, b.Spec.Kind = "worker", "producer"
	ps.Add(a)
	ps.Add(b)
	for _, o := range []*bufio.Reader{outA, outB} {
		if _, err := o.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	infos := ps.StopAll(10*time.Second, "producer", "worker")
	if len(infos) != 2 || !a.Exited() || !b.Exited() {
		t.Fatalf("stopped %d", len(infos))
	}
	if !a.exitedAt().After(b.exitedAt()) && !a.exitedAt().Equal(b.exitedAt()) {
		t.Errorf("the worker exited before the producer")
	}
}

func TestSamplerReadsItself(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := NewSampler(start, time.Hour)
	s.Watch(Target{Name: "me", Kind: "test", Pid: os.Getpid()})
	s.Watch(Target{Name: "gone", Kind: "test", Pid: 1 << 30})
	s.SampleOnce(start.Add(time.Second))
	x := 0
	for i := range 20_000_000 { // some CPU between the samples
		x += i
	}
	_ = x
	s.SampleOnce(start.Add(2 * time.Second))
	got := s.Series("me")
	if len(got) != 2 || got[1].RSS == 0 || got[1].TMS != 2000 {
		t.Fatalf("samples %+v", got)
	}
	if len(s.Series("gone")) != 0 {
		t.Error("a missing process has samples")
	}
}
