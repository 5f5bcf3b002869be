package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// WriteIndex writes <outDir>/README.md: the newest result of every scenario
// (and variant) under outDir, one row each, linking its report.
func WriteIndex(outDir string) error {
	files, _ := filepath.Glob(filepath.Join(outDir, "*", "*.json"))
	slices.Sort(files) // stems start with a UTC timestamp: the last is the newest
	newest := map[string]string{}
	results := map[string]*Result{}
	for _, f := range files {
		r, err := ReadResultFile(f)
		if err != nil {
			continue
		}
		key := r.Scenario.Name + "/" + r.Variant
		newest[key] = f
		results[key] = r
	}
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(allOrder, strings.Split(a, "/")[0]), slices.Index(allOrder, strings.Split(b, "/")[0])
		if ia < 0 {
			ia = len(allOrder)
		}
		if ib < 0 {
			ib = len(allOrder)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	f, err := os.Create(filepath.Join(outDir, "README.md"))
	if err != nil {
		return err
	}
	defer f.Close()
	return writeIndex(f, outDir, keys, newest, results)
}

func writeIndex(w io.Writer, outDir string, keys []string, newest map[string]string, results map[string]*Result) error {
	var b strings.Builder
	b.WriteString("# Benchmark results\n\nThe newest result of every scenario, written by `mesh bench run` " +
		"(`go tool -modfile=tools.mod task bench`). Each row links its report; the JSON beside it holds the full HDR " +
		"histograms, time series, process RSS/CPU series, the same-run ceiling and the environment. " +
		"Rows marked *quick* ran the scenario's shortened form.\n\n")
	b.WriteString("| scenario | when (UTC) | rev | rate/s | tasks/s | % of ceiling | ceiling tasks/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | lost | peak RSS | SLO |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range keys {
		r, path := results[k], newest[k]
		rel, _ := filepath.Rel(outDir, path)
		md := strings.TrimSuffix(rel, ".json") + ".md"
		s := r.Summary
		verdict := "pass"
		if !r.Pass {
			verdict = "**FAIL**"
			for _, c := range r.Checks {
				if !c.Pass {
					verdict += ": " + c.Name
					break
				}
			}
		}
		rate := r.RateLabel()
		fmt.Fprintf(&b, "| [%s](%s) | %s | `%s` | %s | %s | %.1f%% | %s | %s | %s | %s | %s | %d | %d | %s | %s |\n",
			r.Title(), filepath.ToSlash(md), r.Started.UTC().Format("2006-01-02 15:04"), r.Env.ShortRev(), rate,
			fmtRate(s.TasksPerSec), 100*s.CeilingRatio, fmtRate(r.Ceiling.TasksPerSec()), fmtF(s.P50MS), fmtF(s.P99MS),
			fmtF(s.P999MS), fmtF(s.MaxMS), s.Errors, s.Lost, fmtBytes(s.RSSMaxBytes), verdict)
	}
	b.WriteString("\nCompare runs with `bin/mesh bench compare A.json B.json` (or directories of trials).\n")
	_, err := io.WriteString(w, b.String())
	return err
}
