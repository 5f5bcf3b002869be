package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Env is the machine and software a result was measured on. It names no
// host: results are committed and compared across machines of a class.
type Env struct {
	CPUModel string `json:"cpu_model"`
	Cores    int    `json:"cores"`
	MemBytes uint64 `json:"mem_bytes"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	// GoVersion is the Go toolchain that built the mesh binary.
	GoVersion string `json:"go_version"`
	Redis     string `json:"redis_version"`
	Postgres  string `json:"postgres_version"`
	// Revision is the git commit of the measured binary (from its build
	// info, else `git rev-parse HEAD`), Dirty whether the tree had
	// uncommitted changes then.
	Revision string `json:"revision"`
	Dirty    bool   `json:"dirty"`
	// Binary is the measured binary's base name.
	Binary string `json:"binary"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute load averages when the
	// run started: other work on the machine shows here.
	LoadAvg string `json:"load_avg,omitempty"`
}

// ShortRev is the first 12 characters of the revision, with "-dirty".
func (e *Env) ShortRev() string {
	rev := e.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		rev = "unknown"
	}
	if e.Dirty {
		rev += "-dirty"
	}
	return rev
}

// CaptureEnv describes this machine, the binary at bin, and the servers
// behind rdb and the PostgreSQL url (versions left empty when they do not
// answer).
func CaptureEnv(ctx context.Context, bin string, rdb redis.UniversalClient, pgURL string) Env {
	e := Env{Cores: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version(),
		Binary: filepath.Base(bin)}
	e.CPUModel = cpuModel()
	e.LoadAvg = loadAvg()
	e.MemBytes = memTotal()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	e.Revision, e.Dirty, e.GoVersion = binaryRevision(bin, e.GoVersion)
	if e.Revision == "" {
		e.Revision, e.Dirty = gitRevision(ctx)
	}
	e.Redis = redisVersion(ctx, rdb)
	e.Postgres = postgresVersion(ctx, pgURL)
	return e
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			n, _ := ParseBytes(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")) + "KiB")
			return n
		}
	}
	return 0
}

// binaryRevision reads the vcs stamp and Go version of the binary at bin.
func binaryRevision(bin, goVersion string) (rev string, dirty bool, gover string) {
	gover = goVersion
	info, err := readBuildInfo(bin)
	if err != nil || info == nil {
		return "", false, gover
	}
	gover = info.GoVersion
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	return rev, dirty, gover
}

// readBuildInfo reads the build info of the running binary when bin is it,
// else asks `go version -m` (which needs the Go toolchain).
func readBuildInfo(bin string) (*debug.BuildInfo, error) {
	if self, err := os.Executable(); err == nil && sameFile(self, bin) {
		info, _ := debug.ReadBuildInfo()
		return info, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output()
	if err != nil {
		return nil, err
	}
	info := &debug.BuildInfo{}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasSuffix(f[0], ":") {
			info.GoVersion = f[1]
		}
		if len(f) >= 2 && f[0] == "build" {
			k, v, _ := strings.Cut(f[1], "=")
			info.Settings = append(info.Settings, debug.BuildSetting{Key: k, Value: v})
		}
	}
	return info, nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// gitRevision asks git for HEAD and whether the tree is dirty.
func gitRevision(ctx context.Context) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	st, _ := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), len(strings.TrimSpace(string(st))) > 0
}

func redisVersion(ctx context.Context, rdb redis.UniversalClient) string {
	if rdb == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	return infoField(info, "redis_version")
}

// infoField returns field of an INFO reply.
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

func postgresVersion(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return ""
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return ""
	}
	return v
}
