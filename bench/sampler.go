package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// Sample is one reading of a process: RSS and CPU use (1.0 = one core busy)
// since the previous reading.
type Sample struct {
	// TMS is milliseconds since the run started.
	TMS int64 `json:"t_ms"`
	// RSS is the resident set size in bytes (0 when not sampled).
	RSS uint64 `json:"rss_bytes"`
	// CPU is cores used on average since the previous sample.
	CPU float64 `json:"cpu"`
}

// procStat is what /proc says about one process at one moment.
type procStat struct {
	rss   uint64
	ticks uint64 // utime + stime
}

// readProc reads RSS (VmRSS of /proc/<pid>/status) and CPU ticks
// (/proc/<pid>/stat fields 14 and 15) of pid.
func readProc(pid int) (procStat, error) {
	var st procStat
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name (field 2) may hold spaces: fields restart after ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return st, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64) // field 14
	stt, _ := strconv.ParseUint(f[12], 10, 64)
	st.ticks = ut + stt
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			st.rss = kb * 1024
		}
	}
	return st, nil
}

// pidsByComm lists the processes whose command name (/proc/<pid>/comm) is
// comm, e.g. every PostgreSQL server process.
func pidsByComm(comm string) []int {
	matches, _ := filepath.Glob("/proc/[0-9]*/comm")
	var out []int
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil || strings.TrimSpace(string(b)) != comm {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(m)))
		if err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Target is something the sampler reads: one process, or a group of
// processes found by command name (PostgreSQL's backends come and go), whose
// CPU adds up; a group's RSS is not meaningful (shared memory) and is 0.
type Target struct {
	Name string
	Kind string
	// Pid, or Comm for a group.
	Pid  int
	Comm string
}

// Sampler reads every target's RSS and CPU at a fixed interval.
type Sampler struct {
	start    time.Time
	interval time.Duration

	mu      sync.Mutex
	targets []Target
	series  map[string][]Sample
	last    map[string]map[int]procStat
	lastAt  map[string]time.Time
}

// NewSampler returns a sampler whose sample times count from start.
func NewSampler(start time.Time, interval time.Duration) *Sampler {
	return &Sampler{start: start, interval: interval, series: map[string][]Sample{},
		last: map[string]map[int]procStat{}, lastAt: map[string]time.Time{}}
}

// Watch adds a target (a restarted process keeps its name: its series goes on).
func (s *Sampler) Watch(t Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.targets {
		if o.Name == t.Name {
			s.targets[i] = t
			return
		}
	}
	s.targets = append(s.targets, t)
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.SampleOnce(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.SampleOnce(now)
		}
	}
}

// SampleOnce reads every target once.
func (s *Sampler) SampleOnce(now time.Time) {
	s.mu.Lock()
	targets := append([]Target(nil), s.targets...)
	s.mu.Unlock()
	for _, t := range targets {
		pids := []int{t.Pid}
		if t.Comm != "" {
			pids = pidsByComm(t.Comm)
		}
		cur := map[int]procStat{}
		for _, pid := range pids {
			if st, err := readProc(pid); err == nil {
				cur[pid] = st
			}
		}
		s.record(t, now, cur)
	}
}

func (s *Sampler) record(t Target, now time.Time, cur map[int]procStat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, had := s.last[t.Name]
	s.last[t.Name] = cur
	at := s.lastAt[t.Name]
	s.lastAt[t.Name] = now
	if len(cur) == 0 {
		return
	}
	var rss, ticks uint64
	for pid, st := range cur {
		rss += st.rss
		p, ok := prev[pid]
		switch {
		case ok && st.ticks >= p.ticks:
			ticks += st.ticks - p.ticks
		case !ok && had && t.Comm != "":
			ticks += st.ticks // a new backend: all its CPU is recent
		}
	}
	smp := Sample{TMS: now.Sub(s.start).Milliseconds(), RSS: rss}
	if t.Comm != "" {
		smp.RSS = 0
	}
	if had && !at.IsZero() {
		if secs := now.Sub(at).Seconds(); secs > 0 {
			smp.CPU = float64(ticks) / clockTicks / secs
		}
	}
	s.series[t.Name] = append(s.series[t.Name], smp)
}

// Series returns the samples of the target named name.
func (s *Sampler) Series(name string) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.series[name]...)
}

// Targets returns the targets in the order they were added.
func (s *Sampler) Targets() []Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Target(nil), s.targets...)
}
