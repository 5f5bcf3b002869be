package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentmesh/agentmesh/bench"
)

// Postgres is a private PostgreSQL cluster owned by a chaos run: initdb into
// a directory of its own, started with pg_ctl on a free loopback port. When
// the run is root, every PostgreSQL command runs as the postgres user via
// `runuser -u postgres --` (PostgreSQL refuses to run as root), as
// scripts/services.sh does.
type Postgres struct {
	// URL is the database URL the mesh processes get.
	URL  string
	Port int
	// Dir holds the data directory (Dir/data) and the server log.
	Dir string

	initdb, pgctl string
	asUser        []string
	uid, gid      int
}

// pgBin finds a PostgreSQL program on PATH or under /usr/lib/postgresql.
func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		return "", fmt.Errorf("%s not found on PATH or under /usr/lib/postgresql/*/bin (install PostgreSQL)", name)
	}
	return matches[len(matches)-1], nil
}

// StartPostgres creates a cluster under a fresh directory inside parent
// ("" = the system temporary directory) and starts it.
func StartPostgres(ctx context.Context, parent string) (*Postgres, error) {
	pg := &Postgres{uid: -1, gid: -1}
	var err error
	if pg.initdb, err = pgBin("initdb"); err != nil {
		return nil, err
	}
	if pg.pgctl, err = pgBin("pg_ctl"); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user for PostgreSQL: %w", err)
		}
		pg.uid, _ = strconv.Atoi(u.Uid)
		pg.gid, _ = strconv.Atoi(u.Gid)
		pg.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	// Not t.TempDir: its parents are 0700 and root's, which the postgres
	// user could not traverse.
	if pg.Dir, err = os.MkdirTemp(parent, "chaos-pg-"); err != nil {
		return nil, err
	}
	if err := os.Chmod(pg.Dir, 0o755); err != nil {
		return nil, err
	}
	if pg.uid >= 0 {
		if err := os.Chown(pg.Dir, pg.uid, pg.gid); err != nil {
			return nil, err
		}
	}
	if pg.Port, err = bench.FreePort(); err != nil {
		return nil, err
	}
	if err := pg.run(ctx, pg.initdb, "-D", pg.data(), "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %w", err)
	}
	if err := pg.Start(ctx); err != nil {
		return nil, err
	}
	pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port)
	return pg, nil
}

func (pg *Postgres) data() string { return filepath.Join(pg.Dir, "data") }

// run runs a PostgreSQL program (as the postgres user when root).
func (pg *Postgres) run(ctx context.Context, bin string, args ...string) error {
	argv := append(append(append([]string{}, pg.asUser...), bin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// pg_ctl's server must not die with us through the terminal's signals;
	// Stop ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// options are the server settings: loopback on the port, the socket in Dir,
// durable commits (fsync stays on: the audit trusts what was committed).
func (pg *Postgres) options() string {
	return fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", pg.Port, pg.Dir)
}

// Start starts the server and waits until it accepts connections.
func (pg *Postgres) Start(ctx context.Context) error {
	return pg.run(ctx, pg.pgctl, "-D", pg.data(), "-l", filepath.Join(pg.Dir, "server.log"), "-w", "-t", "60",
		"-o", pg.options(), "start")
}

// RestartImmediate is `pg_ctl restart -m immediate`: every server process
// quits without a checkpoint (as in a crash) and the server starts again,
// replaying its WAL.
func (pg *Postgres) RestartImmediate(ctx context.Context) error {
	return pg.run(ctx, pg.pgctl, "-D", pg.data(), "-l", filepath.Join(pg.Dir, "server.log"), "-w", "-t", "60",
		"-m", "immediate", "-o", pg.options(), "restart")
}

// Kill sends SIGKILL to the postmaster and to each of its children, by
// process id, waits for them to go, then starts the server again.
func (pg *Postgres) Kill(ctx context.Context, down time.Duration) error {
	pid, err := pg.postmasterPID()
	if err != nil {
		return err
	}
	pids := append([]int{pid}, childrenOf(pid)...)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	if err := pollCtx(ctx, 60*time.Second, func() bool {
		for _, p := range pids {
			if alive(p) {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("postgres processes still alive after SIGKILL: %w", err)
	}
	// A killed postmaster may linger as a zombie until its parent (not us:
	// pg_ctl daemonised it) reaps it, and PostgreSQL takes a pid that still
	// exists for a running server: remove the stale lock file, as an
	// operator would after checking that no server process is left.
	_ = os.Remove(filepath.Join(pg.data(), "postmaster.pid"))
	sock := filepath.Join(pg.Dir, ".s.PGSQL."+strconv.Itoa(pg.Port))
	_ = os.Remove(sock + ".lock")
	_ = os.Remove(sock)
	if err := bench.SleepCtx(ctx, down); err != nil {
		return err
	}
	return pg.Start(ctx)
}

// Stop stops the server (immediate mode) and removes its directory.
func (pg *Postgres) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pg.run(ctx, pg.pgctl, "-D", pg.data(), "-m", "immediate", "-w", "stop"); err != nil {
		if pid, perr := pg.postmasterPID(); perr == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.RemoveAll(pg.Dir)
}

// PID is the postmaster's process id.
func (pg *Postgres) PID() (int, error) { return pg.postmasterPID() }

func (pg *Postgres) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(pg.data(), "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("reading postmaster.pid: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %q is not a pid", line)
	}
	return pid, nil
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid(p) == pid {
			out = append(out, p)
		}
	}
	return out
}

// ppid reads the parent pid from /proc/<pid>/stat (-1 when gone).
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// RSS reads VmRSS of pid in bytes from /proc/<pid>/status.
func RSS(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}
