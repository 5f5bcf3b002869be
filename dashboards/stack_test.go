package dashboards

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/deploy"
)

// The mesh's settings, as docker-compose.yml's header documents them.
var meshEnvNames = []string{"REDIS_URL", "DATABASE_URL", "MESH_ADDR", "MESH_METRICS_ADDR",
	"MESH_API_TOKEN", "MESH_SCHEMA", "MESH_PREFIX"}

// composeConfig runs `docker-compose config` (which validates the file) and
// returns the resolved configuration. The environment is emptied so a
// developer's MESH_* or .env does not change what is checked.
func composeConfig(t testing.TB) map[string]any {
	t.Helper()
	bin := requireTool(t, "docker-compose", "docker-compose")
	cmd := exec.Command(bin, "-f", "docker-compose.yml", "config")
	cmd.Dir = repoPath()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, stderr.String())
	}
	var cfg map[string]any
	decodeYAML(t, out, &cfg)
	return cfg
}

func TestCompose(t *testing.T) {
	t.Parallel()
	var raw map[string]any
	readYAML(t, repoPath("docker-compose.yml"), &raw)
	if _, ok := raw["version"]; ok {
		t.Error("docker-compose.yml has a version: key; the compose spec has none")
	}
	cfg := composeConfig(t)
	services := obj(cfg, "services")
	for _, s := range []string{"redis", "postgres", "producer", "worker", "web", "prometheus", "grafana", "loadgen"} {
		if obj(services, s) == nil {
			t.Errorf("no %s service", s)
		}
	}
	checkComposeMesh(t, services)
	checkComposeObservability(t, services)
}

func checkComposeMesh(t *testing.T, services map[string]any) {
	head := composeHeader(t)
	for _, name := range meshEnvNames {
		if !strings.Contains(head, name) {
			t.Errorf("docker-compose.yml's header does not document %s", name)
		}
	}
	for _, name := range []string{"producer", "worker", "loadgen"} {
		s := obj(services, name)
		if cmd := strs(arr(s, "command")); len(cmd) == 0 || cmd[0] != name {
			t.Errorf("%s runs %q, want `mesh %s`", name, cmd, name)
		}
		for k := range obj(s, "environment") {
			if !slices.Contains(meshEnvNames, k) {
				t.Errorf("%s sets %s, which is not one of the mesh's settings %q", name, k, meshEnvNames)
			}
		}
	}
	producer := obj(services, "producer")
	if env := obj(producer, "environment"); str(env, "MESH_ADDR") != ":8080" || str(env, "REDIS_URL") == "" || str(env, "DATABASE_URL") == "" {
		t.Errorf("producer environment %v: want MESH_ADDR :8080, REDIS_URL and DATABASE_URL", env)
	}
	if hc := strings.Join(strs(arr(obj(producer, "healthcheck"), "test")), " "); !strings.Contains(hc, "/readyz") {
		t.Errorf("producer healthcheck %q does not probe /readyz", hc)
	}
	worker := obj(services, "worker")
	if str(worker, "container_name") != "" || len(arr(worker, "ports")) > 0 {
		t.Error("worker has a container_name or host ports: `--scale worker=N` would collide")
	}
	if addr := str(obj(worker, "environment"), "MESH_METRICS_ADDR"); addr != "" && addr != ":9091" {
		t.Errorf("worker MESH_METRICS_ADDR %q: Prometheus scrapes :9091", addr)
	}
	if !slices.Contains(strs(arr(obj(services, "loadgen"), "profiles")), "loadgen") {
		t.Error("loadgen is not under the loadgen profile")
	}
	if !slices.Contains(strs(arr(obj(services, "loadgen"), "command")), "--metrics-addr=:9092") {
		t.Error("loadgen does not serve metrics on :9092, where Prometheus looks")
	}
}

// composeHeader returns the comment block at the top of docker-compose.yml.
func composeHeader(t *testing.T) string {
	b, err := os.ReadFile(repoPath("docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		head = append(head, line)
	}
	return strings.Join(head, "\n")
}

// volumeTarget returns the container path a service mounts hostPath at.
func volumeTarget(t *testing.T, service map[string]any, hostPath string) string {
	abs, err := filepath.Abs(repoPath(hostPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range strs(arr(service, "volumes")) {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && filepath.Clean(parts[0]) == abs {
			return parts[1]
		}
	}
	return ""
}

func checkComposeObservability(t *testing.T, services map[string]any) {
	prom := obj(services, "prometheus")
	args := strs(arr(prom, "command"))
	if !slices.Contains(args, "--enable-feature=native-histograms") {
		t.Errorf("prometheus flags %q lack --enable-feature=native-histograms", args)
	}
	target := volumeTarget(t, prom, deploy.ComposePrometheusPath)
	if target == "" || !slices.Contains(args, "--config.file="+target) {
		t.Errorf("prometheus does not read %s (mounted at %q; flags %q)", deploy.ComposePrometheusPath, target, args)
	}

	graf := obj(services, "grafana")
	env := obj(graf, "environment")
	if str(env, "GF_AUTH_ANONYMOUS_ENABLED") != "true" || str(env, "GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer" {
		t.Errorf("grafana environment %v: want anonymous Viewer access", env)
	}
	if got := volumeTarget(t, graf, "grafana/provisioning"); got != "/etc/grafana/provisioning" {
		t.Errorf("grafana mounts grafana/provisioning at %q, want /etc/grafana/provisioning", got)
	}
	var provider map[string]any
	readYAML(t, repoPath("grafana", "provisioning", "dashboards", "agentmesh.yml"), &provider)
	path := str(obj(arr(provider, "providers")[0], "options"), "path")
	if got := volumeTarget(t, graf, "dashboards"); got == "" || got != path {
		t.Errorf("grafana mounts dashboards/ at %q but the dashboard provider reads %q", got, path)
	}
	if home := str(env, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != "" && !strings.HasPrefix(home, path+"/") {
		t.Errorf("home dashboard %q is not under the provider's path %q", home, path)
	} else if home != "" {
		if _, err := os.Stat(filepath.Base(home)); err != nil {
			t.Errorf("home dashboard %q: %v", home, err)
		}
	}
}

func TestProvisioning(t *testing.T) {
	t.Parallel()
	var ds map[string]any
	readYAML(t, repoPath("grafana", "provisioning", "datasources", "prometheus.yml"), &ds)
	if v, _ := num(ds, "apiVersion"); v != 1 {
		t.Errorf("datasources apiVersion %v, want 1", v)
	}
	list := arr(ds, "datasources")
	if len(list) != 1 {
		t.Fatalf("%d datasources provisioned, want 1", len(list))
	}
	d := list[0]
	if str(d, "uid") != DatasourceUID || str(d, "type") != DatasourceType {
		t.Errorf("datasource uid %q type %q, want %q %q (the dashboards reference it)", str(d, "uid"), str(d, "type"), DatasourceUID, DatasourceType)
	}
	if url := str(d, "url"); url != "http://prometheus:9090" {
		t.Errorf("datasource url %q, want the compose service http://prometheus:9090", url)
	}
	var prom map[string]any
	readYAML(t, repoPath(deploy.ComposePrometheusPath), &prom)
	if got, want := str(obj(d, "jsonData"), "timeInterval"), str(obj(prom, "global"), "scrape_interval"); got != want {
		t.Errorf("datasource timeInterval %q != Prometheus scrape_interval %q: $__rate_interval would not match the scrapes", got, want)
	}

	var dp map[string]any
	readYAML(t, repoPath("grafana", "provisioning", "dashboards", "agentmesh.yml"), &dp)
	providers := arr(dp, "providers")
	if len(providers) != 1 {
		t.Fatalf("%d dashboard providers, want 1", len(providers))
	}
	p := providers[0]
	if str(p, "type") != "file" || str(obj(p, "options"), "path") == "" {
		t.Errorf("dashboard provider %v: want a file provider with a path", p)
	}
}

// TestPrometheusConfig runs promtool on the compose configuration and on the
// rendered local one, and checks their scrape jobs.
func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	promtool := requireTool(t, "promtool", "prometheus")
	b, err := os.ReadFile(repoPath(deploy.ComposePrometheusPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, deploy.ComposePrometheus()) {
		t.Fatal("deploy.ComposePrometheus() differs from the file")
	}
	promtoolCheckConfig(t, promtool, "compose", compatibleConfig(t, promtool, b))

	local, err := deploy.LocalPrometheus(deploy.LocalScrape{
		Producer: []string{"127.0.0.1:8080"}, Worker: []string{"127.0.0.1:9091", "127.0.0.1:9093"},
		Loadgen: []string{"127.0.0.1:9092"}, ScrapeInterval: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	promtoolCheckConfig(t, promtool, "local", local)

	var compose, loc map[string]any
	decodeYAML(t, b, &compose)
	decodeYAML(t, local, &loc)
	cj, lj := scrapeJobs(compose), scrapeJobs(loc)
	for _, job := range []string{deploy.JobProducer, deploy.JobWorker, deploy.JobLoadgen} {
		if cj[job] == nil || lj[job] == nil {
			t.Errorf("job %q missing from the compose (%v) or local (%v) configuration", job, keys(cj), keys(lj))
		}
	}
	for job, port := range map[string]float64{deploy.JobProducer: 8080, deploy.JobWorker: 9091, deploy.JobLoadgen: 9092} {
		sd := arr(cj[job], "dns_sd_configs")
		if len(sd) != 1 || str(sd[0], "type") != "A" || !slices.Contains(strs(arr(sd[0], "names")), job) {
			t.Errorf("compose job %q: want one dns_sd_config of type A on the service name (every replica found): %v", job, sd)
			continue
		}
		if p, _ := num(sd[0], "port"); p != port {
			t.Errorf("compose job %q scrapes port %v, want %v", job, p, port)
		}
	}
	var workers []string
	for _, sc := range arr(lj[deploy.JobWorker], "static_configs") {
		workers = append(workers, strs(arr(sc, "targets"))...)
	}
	if !slices.Equal(workers, []string{"127.0.0.1:9091", "127.0.0.1:9093"}) {
		t.Errorf("local worker targets %q", workers)
	}
	if got := str(obj(loc, "global"), "scrape_interval"); got != "250ms" {
		t.Errorf("local scrape_interval %q, want 250ms", got)
	}
}

func scrapeJobs(cfg map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, sc := range arr(cfg, "scrape_configs") {
		m, _ := sc.(map[string]any)
		out[str(m, "job_name")] = m
	}
	return out
}

// newerPromKeys are configuration keys of the compose stack's Prometheus 3.5
// that older promtools (Debian's is 2.42) reject as unknown fields.
var newerPromKeys = regexp.MustCompile(`(?m)^\s*always_scrape_classic_histograms:.*\n`)

// compatibleConfig returns cfg as the installed promtool can check it: as is
// on promtool ≥ 3.5, else without the newer keys (exactly one expected, and
// only that one is removed — everything else is checked).
func compatibleConfig(t *testing.T, promtool string, cfg []byte) []byte {
	out, err := exec.Command(promtool, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool --version: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`version (\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("promtool --version: no version in %q", out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if major > 3 || major == 3 && minor >= 5 {
		return cfg
	}
	if n := len(newerPromKeys.FindAll(cfg, -1)); n != 1 {
		t.Fatalf("want exactly one always_scrape_classic_histograms line in the compose config, found %d", n)
	}
	t.Logf("promtool %s.%s predates always_scrape_classic_histograms (Prometheus 3.5): checking the rest of the compose config", m[1], m[2])
	return newerPromKeys.ReplaceAll(cfg, nil)
}

func promtoolCheckConfig(t *testing.T, promtool, name string, cfg []byte) {
	path := filepath.Join(t.TempDir(), name+".yml")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check config (%s): %v\n%s\n--- config ---\n%s", name, err, out, cfg)
	}
}

// TestDashboardJobs: the job names the dashboards filter on exist in both
// Prometheus configurations.
func TestDashboardJobs(t *testing.T) {
	t.Parallel()
	known := []string{deploy.JobProducer, deploy.JobWorker, deploy.JobLoadgen}
	for _, f := range loadDashboards(t) {
		for _, tg := range targetsOf(f) {
			for _, job := range jobsUsed(tg.expr) {
				if !slices.Contains(known, job) {
					t.Errorf("%s filters on job %q; the Prometheus configurations define %q", tg, job, known)
				}
			}
		}
		for _, v := range variablesOf(t, f) {
			for _, job := range jobsUsed(v.selector) {
				if !slices.Contains(known, job) {
					t.Errorf("%s variable %q filters on job %q; the configurations define %q", f.name, v.name, job, known)
				}
			}
		}
	}
}
