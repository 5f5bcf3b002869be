// Package dashboards is Agent Mesh's Grafana dashboards as code. Each
// dashboard is a Go function over a small builder, so every panel filters
// by the same variables, uses the provisioned datasource and carries a
// unit; `go run ./dashboards/gen` writes the JSON files Grafana loads
// (dashboards/*.json, provisioned by grafana/provisioning/dashboards), and a
// golden test keeps the committed files equal to the generator's output.
//
// The tests also check the committed JSON on its own terms (valid, unique
// panel ids, datasource uid, units, every metric named in docs/contracts.md)
// and, against a real mesh and a real Prometheus, that every panel's query
// returns data.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// File is one dashboard and the file name it is written to.
type File struct {
	Name      string
	Dashboard *Dashboard
}

// All returns every dashboard with its file name, in a fixed order.
func All() []File {
	return []File{
		{"mesh-overview.json", Overview()},
		{"latency.json", Latency()},
		{"worker-health.json", Workers()},
		{"loadgen.json", Loadgen()},
	}
}

// Render encodes d as Grafana stores it: indented JSON with a final newline.
func Render(d *Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep =~ and < readable in expressions
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("dashboards: encoding %q: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}
