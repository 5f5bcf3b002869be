package loadgen

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkGenerator measures the highest rate the generator itself
// sustains against a trivial in-process server (the fakeMesh: accept, and
// publish the completions on /ws/completions once per millisecond, as a
// batching producer would) on this machine, which it shares with
// that server. Each sub-benchmark is one open-loop run of benchDuration at a
// fixed target rate; it reports the achieved/target ratio (the goal: ≥ 0.99
// at 20,000 tasks/s), the achieved rate, and the p99 of the schedule lag
// and of the corrected latency. 32 senders are plenty for a server that
// answers in well under a millisecond (20,000/s × 0.5 ms = 10 in flight),
// and fewer connections cost less CPU on 2 cores than hundreds.
//
//	go test -run '^$' -bench Generator -benchtime 1x ./loadgen/
func BenchmarkGenerator(b *testing.B) {
	const benchDuration = 3 * time.Second
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average before: %s (the generator shares the 2 cores with the server and anything else running)", load)
	}
	for _, bc := range []struct {
		rate       float64
		submitOnly bool
		batch      int
	}{
		{rate: 10000, submitOnly: true},
		{rate: 20000, submitOnly: true},
		{rate: 30000, submitOnly: true},
		{rate: 10000},
		{rate: 20000},
		{rate: 30000},
		{rate: 50000, batch: 50},
	} {
		name := fmt.Sprintf("rate=%.0f/e2e=%v/batch=%d", bc.rate, !bc.submitOnly, max(bc.batch, 1))
		b.Run(name, func(b *testing.B) {
			fake := newFakeMesh(b, fakeOpts{noStore: true, noStream: bc.submitOnly, flushEvery: time.Millisecond})
			var res *Result
			cpu0 := cpuTime()
			for b.Loop() {
				var err error
				res, err = Run(b.Context(), Config{Target: fake.URL, Rate: bc.rate, Duration: benchDuration,
					SubmitOnly: bc.submitOnly, Batch: bc.batch, Senders: 32, Payload: SizeDist{{128, 128, 1}}})
				if err != nil {
					b.Fatal(err)
				}
			}
			// CPU per task (generator and fake server together) does not depend
			// on what else runs on the machine: 2 cores / cpu-µs/task bounds the
			// rate this box could sustain if the two had it to themselves.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(max(res.Tasks.Sent, 1)), "cpu-µs/task")
			b.ReportMetric(res.AchievedRate/res.TargetRate, "achieved/target")
			b.ReportMetric(res.AchievedRate, "tasks/s")
			b.ReportMetric(float64(res.Latency.ScheduleLag.P99US), "lag-p99-µs")
			if !bc.submitOnly {
				b.ReportMetric(float64(res.Latency.Corrected.P99US), "corrected-p99-µs")
				if res.Tasks.Completed != res.Tasks.Sent {
					b.Errorf("completed %d of %d sent", res.Tasks.Completed, res.Tasks.Sent)
				}
			}
			if res.Tasks.Errors+res.Tasks.Rejected > 0 {
				b.Errorf("errors: %+v", res.Errors)
			}
		})
	}
}

// cpuTime is the CPU time (user + system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
