// Command gen writes Agent Mesh's Grafana dashboards (package dashboards) as
// the JSON files Grafana provisions:
//
//	go run ./dashboards/gen              # writes dashboards/*.json and dashboards/README.md
//	go run ./dashboards/gen -out DIR
//
// The golden test in package dashboards fails when the committed files differ
// from this output; `go test ./dashboards -run Golden -update` rewrites them too.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentmesh/agentmesh/dashboards"
)

func main() {
	out := flag.String("out", "dashboards", "directory to write the dashboard JSON files into")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	for _, f := range dashboards.All() {
		b, err := dashboards.Render(f.Dashboard)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, f.Name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	path := filepath.Join(dir, dashboards.ReadmeName)
	if err := os.WriteFile(path, dashboards.Markdown(dashboards.All()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	fmt.Println("wrote", path)
	return nil
}
