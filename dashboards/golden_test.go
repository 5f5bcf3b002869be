package dashboards

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGolden keeps the committed JSON (what Grafana loads) and the panel
// list (README.md) equal to the generator's output; -update rewrites them.
func TestGolden(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{ReadmeName: Markdown(All())}
	for _, f := range All() {
		b, err := Render(f.Dashboard)
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
	}
	for _, name := range keys(files) {
		want := files[name]
		if *update {
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s: %v (run `go run ./dashboards/gen`)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output at line %d: edit the Go code, not the JSON, "+
				"then run `go run ./dashboards/gen` (or `go test ./dashboards -run TestGolden -update`)",
				name, firstDiffLine(got, want))
		}
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// TestNoStrayDashboards: Grafana's file provider loads every *.json under
// dashboards/, recursively, so only the generated files may be there.
func TestNoStrayDashboards(t *testing.T) {
	t.Parallel()
	var want []string
	for _, f := range All() {
		want = append(want, f.Name)
	}
	slices.Sort(want)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		if !slices.Contains(want, path) {
			t.Errorf("%s: Grafana would load it as a dashboard; only the generated files (%q) belong under dashboards/", path, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
