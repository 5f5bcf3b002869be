package bench

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind; a test binary
// started with BENCH_TEST_HELPER acts as a child process for proc_test.go.
func TestMain(m *testing.M) {
	if helper := os.Getenv("BENCH_TEST_HELPER"); helper != "" {
		os.Exit(runHelper(helper))
	}
	goleak.VerifyTestMain(m)
}
