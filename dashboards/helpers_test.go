package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// repoPath joins elem onto the repository root (tests run in dashboards/).
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{".."}, elem...)...)
}

// requireTool returns the path of an external program the tests need, or
// fails naming the Debian package that provides it. It never skips: CI
// (.ci/run) installs these, so a missing one is a broken setup, not a reason
// to pass.
func requireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: `apt-get install -y %s` (.ci/run installs it when missing)", name, debianPackage)
	}
	return p
}

// decodeYAML decodes YAML into v through PyYAML (Debian's python3-yaml, which
// docker-compose depends on): the module has no YAML library and go.mod stays
// as it is.
func decodeYAML(t testing.TB, data []byte, v any) {
	t.Helper()
	py := requireTool(t, "python3", "python3-yaml")
	cmd := exec.Command(py, "-c",
		"import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "No module named 'yaml'") {
			t.Fatalf("PyYAML is not installed: `apt-get install -y python3-yaml` (docker-compose depends on it)")
		}
		t.Fatalf("decoding YAML: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("decoding YAML (as JSON): %v", err)
	}
}

// readYAML reads and decodes a YAML file of the repository.
func readYAML(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decodeYAML(t, b, v)
}

// Accessors for decoded JSON/YAML documents (map[string]any trees). They
// return zero values for missing keys, so checks read as plain comparisons.

func obj(v any, key string) map[string]any {
	m, _ := v.(map[string]any)
	o, _ := m[key].(map[string]any)
	return o
}

func arr(v any, key string) []any {
	m, _ := v.(map[string]any)
	a, _ := m[key].([]any)
	return a
}

func str(v any, key string) string {
	m, _ := v.(map[string]any)
	s, _ := m[key].(string)
	return s
}

func num(v any, key string) (float64, bool) {
	m, _ := v.(map[string]any)
	f, ok := m[key].(float64)
	return f, ok
}

// strs turns a decoded list into strings (non-strings render with %v).
func strs(a []any) []string {
	out := make([]string, 0, len(a))
	for _, v := range a {
		if s, ok := v.(string); ok {
			out = append(out, s)
		} else {
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
