// Package deploy holds the deployment files of Agent Mesh that code needs:
// the Prometheus configuration of the docker-compose stack and the template
// that renders one for local runs, where the mesh listens on loopback ports
// (the live dashboard test, `go run ./deploy/promconfig` for task).
//
// The job names are shared by both configurations and by the Grafana
// dashboards' queries: JobProducer, JobWorker and JobLoadgen.
package deploy

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"text/template"
	"time"
)

// Scrape job names, as the dashboards' queries use them (job="worker").
const (
	JobProducer = "producer"
	JobWorker   = "worker"
	JobLoadgen  = "loadgen"
)

// ComposePrometheusPath is the compose stack's Prometheus configuration,
// relative to the repository root.
const ComposePrometheusPath = "deploy/prometheus/prometheus.yml"

// Defaults of LocalScrape.
const (
	// DefaultScrapeInterval is how often a local Prometheus scrapes.
	DefaultScrapeInterval = time.Second
)

//go:embed prometheus/prometheus.yml prometheus/local.yml.tmpl
var files embed.FS

var localTemplate = template.Must(template.New("local.yml.tmpl").Funcs(template.FuncMap{
	"duration": promDuration,
	"quote":    quote,
}).ParseFS(files, "prometheus/local.yml.tmpl"))

// ComposePrometheus returns the compose stack's Prometheus configuration
// (deploy/prometheus/prometheus.yml).
func ComposePrometheus() []byte {
	b, err := files.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		panic(fmt.Sprintf("deploy: embedded prometheus.yml: %v", err)) // embedded at build time
	}
	return b
}

// LocalScrape says what a local Prometheus scrapes: host:port targets per job.
type LocalScrape struct {
	// Producer are the producers' HTTP addresses (their /metrics).
	Producer []string
	// Worker are the workers' --metrics-addr addresses.
	Worker []string
	// Loadgen are the load generators' --metrics-addr addresses.
	Loadgen []string
	// ScrapeInterval defaults to DefaultScrapeInterval.
	ScrapeInterval time.Duration
}

// WithDefaults returns a copy of s with its zero fields set to their defaults.
func (s LocalScrape) WithDefaults() LocalScrape {
	if s.ScrapeInterval <= 0 {
		s.ScrapeInterval = DefaultScrapeInterval
	}
	return s
}

func (s LocalScrape) validate() error {
	if s.ScrapeInterval%time.Millisecond != 0 {
		return fmt.Errorf("scrape interval %s: want whole milliseconds", s.ScrapeInterval)
	}
	if len(s.Producer)+len(s.Worker)+len(s.Loadgen) == 0 {
		return fmt.Errorf("no targets to scrape")
	}
	return nil
}

type job struct {
	Name    string
	Targets []string
}

// LocalPrometheus renders a Prometheus configuration that scrapes the given
// loopback targets with the same job names as the compose stack. A job with
// no targets is kept (with an empty target list) so the configuration's shape
// does not depend on what runs.
func LocalPrometheus(s LocalScrape) ([]byte, error) {
	s = s.WithDefaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("deploy: local prometheus config: %w", err)
	}
	data := struct {
		ScrapeInterval, ScrapeTimeout time.Duration
		Jobs                          []job
	}{
		ScrapeInterval: s.ScrapeInterval,
		// Prometheus requires timeout ≤ interval; leave a little slack.
		ScrapeTimeout: s.ScrapeInterval * 4 / 5,
		Jobs: []job{
			{JobProducer, nonNil(s.Producer)},
			{JobWorker, nonNil(s.Worker)},
			{JobLoadgen, nonNil(s.Loadgen)},
		},
	}
	var buf bytes.Buffer
	if err := localTemplate.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("deploy: rendering local prometheus config: %w", err)
	}
	return buf.Bytes(), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// promDuration formats d as Prometheus expects ("1s", "250ms").
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// quote renders s as a double-quoted YAML scalar (JSON strings are valid YAML).
func quote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}
