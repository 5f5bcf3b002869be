package dashboards

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// A small PromQL reader: enough to name the series a dashboard expression
// reads, without pulling the Prometheus server module into go.mod.
var (
	stringLit = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	braces    = regexp.MustCompile(`\{[^{}]*\}`)
	brackets  = regexp.MustCompile(`\[[^\[\]]*\]`)
	grouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	// A duration, a number, or an identifier and whether a "(" follows (a
	// function call).
	token     = regexp.MustCompile(`(?:\d+(?:ms|[smhdwy]))+|(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?`)
	variables = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)
	// label="value" and label=~"regex" matchers.
	matcher = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
)

var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"inf": true, "nan": true, "by": true, "without": true, "on": true,
	"ignoring": true, "group_left": true, "group_right": true,
}

// grafanaMacros are the variables Grafana itself defines.
var grafanaMacros = map[string]bool{
	"__rate_interval": true, "__interval": true, "__interval_ms": true,
	"__range": true, "__range_s": true, "__range_ms": true,
}

// metricNames returns the metric names an expression selects, sorted.
func metricNames(expr string) []string {
	s := stringLit.ReplaceAllString(expr, `""`)
	s = braces.ReplaceAllString(s, " ")
	s = brackets.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	var names []string
	for _, m := range token.FindAllStringSubmatch(s, -1) {
		name, call := m[1], m[2] != ""
		if name == "" || call || promqlKeywords[strings.ToLower(name)] || strings.HasPrefix(name, "$") {
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// variablesUsed returns the $variables an expression refers to, sorted.
func variablesUsed(expr string) []string {
	var out []string
	for _, m := range variables.FindAllStringSubmatch(expr, -1) {
		name := m[1] + m[2] + m[3]
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// jobsUsed returns the job names an expression's job matchers can match
// (job="a" or job=~"a|b").
func jobsUsed(expr string) []string {
	var out []string
	for _, m := range matcher.FindAllStringSubmatch(expr, -1) {
		if m[1] != "job" || (m[2] != "=" && m[2] != "=~") {
			continue
		}
		out = append(out, strings.Split(m[3], "|")...)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want []string
	}{
		// a bare selector with matchers and a Grafana variable
		{`agentmesh_worker_rss_bytes{instance=~"$instance"}`, []string{"agentmesh_worker_rss_bytes"}},
		// functions, aggregation with grouping, range with a macro
		{`sum by (role, le) (rate(agentmesh_task_latency_seconds_bucket{role=~"$role"}[$__rate_interval]))`,
			[]string{"agentmesh_task_latency_seconds_bucket"}},
		// a number argument and a scientific literal are not metrics
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) > 1e-9`, []string{"x_bucket"}},
		// binary operators with keywords and two metrics
		{`sum(a_total) / sum(b_total) and on (job) up == bool 1`, []string{"a_total", "b_total", "up"}},
		// label values that look like metric names are not metrics
		{`up{job=~"producer|worker"}`, []string{"up"}},
		// offset and a duration
		{`rate(c_total[1m] offset 5m)`, []string{"c_total"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestVariablesAndJobsUsed(t *testing.T) {
	t.Parallel()
	expr := `sum(rate(x{job=~"producer|worker",role=~"$role",instance=~"${instance}"}[$__rate_interval])) + y{job="loadgen",a="[[b]]"}`
	if got, want := variablesUsed(expr), []string{"__rate_interval", "b", "instance", "role"}; !slices.Equal(got, want) {
		t.Errorf("variablesUsed = %q, want %q", got, want)
	}
	if got, want := jobsUsed(expr), []string{"producer", "worker", "loadgen"}; !slices.Equal(got, want) {
		t.Errorf("jobsUsed = %q, want %q", got, want)
	}
}

// contractMetrics returns the metric names docs/contracts.md lists under
// "Prometheus metric names" — the source of truth the mesh is built to.
func contractMetrics(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(repoPath("docs", "contracts.md"))
	if err != nil {
		t.Fatalf("reading the contract: %v", err)
	}
	doc := string(b)
	const heading = "## Prometheus metric names"
	i := strings.Index(doc, heading)
	if i < 0 {
		t.Fatalf("docs/contracts.md has no %q section", heading)
	}
	sec := doc[i+len(heading):]
	if j := strings.Index(sec, "\n## "); j >= 0 {
		sec = sec[:j]
	}
	var names []string
	for _, m := range regexp.MustCompile("`(agentmesh_[a-z0-9_]+)").FindAllStringSubmatch(sec, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d metric names in the contract's %q section: has its format changed?", len(names), heading)
	}
	return names
}

// collectorMetrics returns the series names of client_golang's Go and process
// collectors (what every mesh process registers besides its own), with the
// _sum/_count/_bucket series of summaries and histograms.
func collectorMetrics(t testing.TB) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering the Go and process collectors: %v", err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		switch mf.GetType().String() { // client_model's enum, by name: that module is indirect here
		case "SUMMARY":
			names = append(names, mf.GetName()+"_sum", mf.GetName()+"_count")
		case "HISTOGRAM":
			names = append(names, mf.GetName()+"_sum", mf.GetName()+"_count", mf.GetName()+"_bucket")
		}
	}
	return names
}

// scrapeMetrics are the series Prometheus writes itself for every target.
var scrapeMetrics = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added"}

// allowedMetrics is every series name a dashboard may read: the contract's
// names (with the _bucket/_sum/_count series a histogram adds), the Go and
// process collectors, and Prometheus's scrape series.
func allowedMetrics(t testing.TB) map[string]bool {
	t.Helper()
	ok := map[string]bool{}
	for _, n := range contractMetrics(t) {
		ok[n] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			ok[n+suffix] = true
		}
	}
	for _, n := range collectorMetrics(t) {
		ok[n] = true
	}
	for _, n := range scrapeMetrics {
		ok[n] = true
	}
	return ok
}

func TestContractParses(t *testing.T) {
	t.Parallel()
	names := contractMetrics(t)
	for _, want := range []string{"agentmesh_task_latency_seconds", "agentmesh_queue_depth", "agentmesh_loadgen_lost_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("contract names lack %s: %q", want, names)
		}
	}
	if got := collectorMetrics(t); !slices.Contains(got, "go_gc_duration_seconds_count") || !slices.Contains(got, "process_cpu_seconds_total") {
		t.Errorf("collector names lack go_gc_duration_seconds_count or process_cpu_seconds_total: %q", got)
	}
}
