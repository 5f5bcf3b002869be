package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchCmd runs `mesh bench …` and returns its exit status and output.
func benchCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := dispatch(append([]string{"bench"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// synthetic is the bench package's golden synthetic result.
const synthetic = "../../bench/testdata/golden/synthetic.json"

func TestBenchList(t *testing.T) {
	t.Parallel()
	code, out, _ := benchCmd(t, "list")
	if code != 0 || !strings.Contains(out, "seed-750") || !strings.Contains(out, "(manual") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestBenchUsage(t *testing.T) {
	t.Parallel()
	if code, _, errOut := benchCmd(t); code != 2 || !strings.Contains(errOut, "gate") {
		t.Errorf("no subcommand: exit %d, %q", code, errOut)
	}
	if code, _, _ := benchCmd(t, "nope"); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
	if code, _, errOut := benchCmd(t, "run", "--scenario", "nope"); code != 1 || !strings.Contains(errOut, `no scenario "nope"`) {
		t.Errorf("unknown scenario: exit %d, %q", code, errOut)
	}
	if code, _, errOut := benchCmd(t, "run", "--scenario", "seed-750", "--set", `{"load":{"rate":-5}}`); code != 1 || !strings.Contains(errOut, "load.rate") {
		t.Errorf("bad patch: exit %d, %q", code, errOut)
	}
	if code, _, _ := benchCmd(t, "compare", synthetic); code != 2 {
		t.Errorf("compare with one side: exit %d", code)
	}
}

func TestBenchCompare(t *testing.T) {
	t.Parallel()
	code, out, errOut := benchCmd(t, "compare", synthetic, synthetic)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"throughput (tasks/s)", "p99 e2e (ms)", "no significant change", "smallest two-sided p-value"} {
		if !strings.Contains(out, want) {
			t.Errorf("output misses %q:\n%s", want, out)
		}
	}
	code, out, errOut = benchCmd(t, "compare", synthetic, synthetic, "--", synthetic, synthetic)
	if code != 0 || !strings.Contains(out, "1.000") {
		t.Errorf("two trials per side: exit %d, %s\n%s", code, errOut, out)
	}
}

func TestBenchReport(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "seed-750")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(synthetic)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := benchCmd(t, "report", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"x.md", "x-latency.svg", "x-timeline.svg", "x-rss.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written (%v); output:\n%s", f, err, out)
		}
	}
}
