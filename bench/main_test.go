package bench

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind. The test binary
// doubles as a child process: with BENCH_TEST_HELPER set it runs a helper of
// proc_test.go, and called as `<test binary> producer|worker|loadgen …` it is
// the fake mesh of orchestrator_test.go.
func TestMain(m *testing.M) {
	if helper := os.Getenv("BENCH_TEST_HELPER"); helper != "" {
		os.Exit(runHelper(helper))
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "producer", "worker", "loadgen":
			os.Exit(fakeMesh(os.Args[1], os.Args[2:]))
		}
	}
	// Children built with -race sleep a second at exit by default; the
	// fake mesh's stop times must not include that.
	if os.Getenv("GORACE") == "" {
		_ = os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	goleak.VerifyTestMain(m)
}
