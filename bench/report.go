package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/loadgen"
)

// Plot is one rendered SVG of a result.
type Plot struct {
	// Suffix names the file: <stem>-<suffix>.svg.
	Suffix string
	Title  string
	SVG    string
}

// Plots renders the result's plots: latency by percentile, throughput and
// p99 over time, RSS over time, and for a search p99 and throughput by rate.
func Plots(r *Result) []Plot {
	var out []Plot
	if r.Load != nil {
		out = append(out, Plot{"latency", "Latency by percentile", latencyChart(r).render()})
		out = append(out, Plot{"timeline", "Throughput and p99 over time", timelineChart(r).render()})
	}
	if len(r.Processes) > 0 {
		out = append(out, Plot{"rss", "RSS over time", rssChart(r).render()})
	}
	if len(r.Steps) > 0 {
		out = append(out, Plot{"search", "Search: latency and throughput by rate", searchChart(r).render()})
	}
	return out
}

func latencyChart(r *Result) *chart {
	c := &chart{Title: r.Title() + ": latency by percentile", XLabel: "percentile", YLabel: "latency (ms)",
		XTicks: percentileTicks, XMin: 0, XMax: 5}
	lat := r.Load.Latency
	for _, s := range []struct {
		name string
		h    *loadgen.Histogram
		dash bool
	}{{"end to end (from intended send)", lat.Corrected, false}, {"service (from actual send)", lat.Service, true},
		{"submit (intended send → 2xx)", lat.Submit, true}} {
		if s.h == nil || s.h.Count == 0 {
			continue
		}
		c.Lines = append(c.Lines, line{Name: s.name, Pts: percentileCurve(s.h.HDRHistogram()), Dash: s.dash})
	}
	return c
}

func timelineChart(r *Result) *chart {
	c := &chart{Title: r.Title() + ": throughput and p99 over time", XLabel: "time (s)", YLabel: "units per second",
		Y2Label: "p99 end to end (ms)"}
	l := r.Load.Result
	if len(l.Series) == 0 {
		return c
	}
	t0 := l.Series[0].StartMS
	var sent, done, errs, p99 []pt
	for _, iv := range l.Series {
		secs := float64(iv.EndMS-iv.StartMS) / 1000
		if secs <= 0 {
			continue
		}
		x := float64(iv.EndMS-t0) / 1000
		sent = append(sent, pt{x, float64(iv.Sent) / secs})
		done = append(done, pt{x, float64(iv.Completed) / secs})
		errs = append(errs, pt{x, float64(iv.Errors) / secs})
		if cr := iv.Latency.Corrected; cr != nil && cr.Count > 0 {
			p99 = append(p99, pt{x, float64(cr.P99US) / 1000})
		}
	}
	c.XMin, c.XMax = 0, float64(l.Series[len(l.Series)-1].EndMS-t0)/1000
	c.Lines = []line{{Name: "sent/s", Pts: sent}, {Name: "completed/s", Pts: done}, {Name: "errors/s", Pts: errs},
		{Name: "p99 end to end (ms, right axis)", Pts: p99, Y2: true, Dash: true}}
	for _, f := range r.Faults {
		// Fault times count from the measured phase's start, as the series.
		c.Markers = append(c.Markers, tick{V: float64(f.AtMS) / 1000, Label: f.Kind})
	}
	return c
}

func rssChart(r *Result) *chart {
	c := &chart{Title: r.Title() + ": RSS over time", XLabel: "time since the run started (s)", YLabel: "RSS (MiB)"}
	for _, p := range r.Processes {
		if p.MaxRSS == 0 {
			continue
		}
		var pts []pt
		for _, s := range p.Samples {
			x := float64(s.TMS) / 1000
			pts = append(pts, pt{x, float64(s.RSS) / (1 << 20)})
			c.XMax = max(c.XMax, x)
		}
		c.Lines = append(c.Lines, line{Name: p.Name, Pts: pts, Dash: p.Kind == "loadgen" || p.Kind == "redis"})
	}
	return c
}

func searchChart(r *Result) *chart {
	c := &chart{Title: r.Title() + ": p99 and throughput by offered rate", XLabel: "offered rate (units/s)",
		YLabel: "p99 end to end (ms)", Y2Label: "completed tasks/s"}
	steps := slices.Clone(r.Steps)
	slices.SortStableFunc(steps, func(a, b SearchStep) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	var p99, tput []pt
	for _, s := range steps {
		p99 = append(p99, pt{s.Rate, s.Summary.P99MS})
		tput = append(tput, pt{s.Rate, s.Summary.TasksPerSec})
		c.XMax = max(c.XMax, s.Rate)
	}
	c.Lines = []line{{Name: "p99 end to end (ms)", Pts: p99}, {Name: "completed tasks/s (right axis)", Pts: tput, Y2: true, Dash: true}}
	if r.Scenario.SLO.P99 > 0 {
		slo := msOf(r.Scenario.SLO.P99.D())
		c.Lines = append(c.Lines, line{Name: "SLO", Pts: []pt{{0, slo}, {c.XMax, slo}}, Dash: true})
	}
	return c
}

// WriteMarkdown writes the result's report; plots are linked as
// <stem>-<suffix>.svg beside it.
func WriteMarkdown(w io.Writer, r *Result, stem string) error {
	var b strings.Builder
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# %s — %s\n\n%s\n\n", r.Title(), verdict, r.Scenario.Description)
	if r.Quick {
		b.WriteString("> **Quick run**: the scenario's quick patch shortened it; figures are indicative only.\n\n")
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "> **The run failed**: %s\n\n", r.Error)
	}
	e := r.Env
	fmt.Fprintf(&b, "Measured %s (%s) on %s, %d cores, %s RAM (load average at the start %s); %s; Redis %s; PostgreSQL %s; revision `%s`.\n\n",
		r.Started.UTC().Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second), e.CPUModel, e.Cores,
		fmtBytes(e.MemBytes), e.LoadAvg, e.GoVersion, e.Redis, e.Postgres, e.ShortRev())
	writeHeadline(&b, r)
	writeChecks(&b, r)
	for _, p := range Plots(r) {
		fmt.Fprintf(&b, "![%s](%s-%s.svg)\n\n", p.Title, stem, p.Suffix)
	}
	writeSteps(&b, r)
	writeFaults(&b, r)
	writeProcesses(&b, r)
	writeCounters(&b, r)
	writeCeiling(&b, r)
	if len(r.Notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	if r.Load != nil {
		b.WriteString("## Load generator report\n\n```text\n")
		var lr strings.Builder
		_ = loadgen.WriteReport(&lr, r.Load.Result)
		b.WriteString(lr.String())
		b.WriteString("```\n\n")
	}
	writeReproduce(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHeadline(b *strings.Builder, r *Result) {
	s := r.Summary
	b.WriteString("## Headline\n\n| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(b, "| %s | %s |\n", k, v) }
	switch {
	case r.Scenario.Search != nil:
		row("sustainable rate", fmt.Sprintf("**%s units/s** (p99 end to end ≤ %s)", fmtRate(r.Rate), r.Scenario.SLO.P99))
	case r.Load != nil && r.Load.Mode == loadgen.ClosedLoop:
		row("load", r.Load.Schedule+" (closed loop)")
	case r.Scenario.Load.Requests > 0:
		row("load", fmt.Sprintf("a burst of %d units, all due at once; drained after %s ms (the max end to end)", r.Scenario.Load.Requests, fmtF(s.MaxMS)))
	default:
		row("target rate", fmtRate(s.TargetRate)+" units/s")
	}
	ceil := r.Ceiling.TasksPerSec()
	tp := fmt.Sprintf("%s tasks/s (%s units/s)", fmtRate(s.TasksPerSec), fmtRate(s.Throughput))
	if ceil > 0 {
		tp += fmt.Sprintf(" — **%.1f%%** of the bare-pipeline ceiling (%s tasks/s, same run)", 100*s.CeilingRatio, fmtRate(ceil))
	}
	row("throughput", tp)
	row("end to end p50 / p90 / p99 / p99.9 / max", fmt.Sprintf("%s / %s / **%s** / %s / %s ms",
		fmtF(s.P50MS), fmtF(s.P90MS), fmtF(s.P99MS), fmtF(s.P999MS), fmtF(s.MaxMS)))
	row("submit p99 (intended send → 2xx)", fmtF(s.SubmitP99MS)+" ms")
	if r.Mesh != nil && r.Mesh.Latency != nil {
		ml := r.Mesh.Latency
		row("mesh latency p50 / p99 (created → completed, from its histogram buckets)",
			fmt.Sprintf("%s / %s ms over %.0f tasks", fmtF(ml.P50MS), fmtF(ml.P99MS), ml.Count))
	}
	row("units scheduled / accepted / completed / dead", fmt.Sprintf("%d / %d / %d / %d", s.Scheduled, s.Accepted, s.Completed, s.Dead))
	errs := fmt.Sprintf("%d (ratio %.4g; 429/503: %d)", s.Errors, s.ErrorRatio, s.Rejected)
	if r.Load != nil && len(r.Load.HTTP.StatusCodes) > 0 {
		errs += " — status codes " + statusCodes(r.Load.HTTP.StatusCodes)
	}
	row("errors", errs)
	row("lost / duplicates / unresolved", fmt.Sprintf("%d / %d / %d", s.Lost, s.Duplicates, s.Unresolved))
	row("peak RSS of a mesh process", fmtBytes(s.RSSMaxBytes))
	if len(s.CPU) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.CPU)) {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, s.CPU[k]))
		}
		row("CPU during the measured phase (cores)", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
}

// fmtNum renders a counter: integers in full, others to 3 decimals.
func fmtNum(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func statusCodes(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func fmtF(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func writeChecks(b *strings.Builder, r *Result) {
	if len(r.Checks) == 0 {
		return
	}
	b.WriteString("## Service levels\n\n| check | want | got | |\n|---|---|---|---|\n")
	for _, c := range r.Checks {
		mark := "pass"
		if !c.Pass {
			mark = "**FAIL**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", c.Name, c.Want, c.Got, mark)
	}
	b.WriteString("\n")
}

func writeSteps(b *strings.Builder, r *Result) {
	if len(r.Steps) == 0 {
		return
	}
	b.WriteString("## Search steps\n\n| # | offered units/s | completed tasks/s | of ceiling | p50 ms | p99 ms | max ms | errors | verdict |\n|---|---|---|---|---|---|---|---|---|\n")
	for i, s := range r.Steps {
		v := "pass"
		if !s.Pass {
			v = "fail: " + strings.Join(s.Failed, "; ")
		}
		fmt.Fprintf(b, "| %d | %s | %s | %.1f%% | %s | %s | %s | %d | %s |\n", i+1, fmtRate(s.Rate),
			fmtRate(s.Summary.TasksPerSec), 100*s.Summary.CeilingRatio, fmtF(s.Summary.P50MS), fmtF(s.Summary.P99MS),
			fmtF(s.Summary.MaxMS), s.Summary.Errors, v)
	}
	b.WriteString("\n")
}

func writeFaults(b *strings.Builder, r *Result) {
	if len(r.Faults) == 0 {
		return
	}
	b.WriteString("## Faults injected\n\n| at (s) | kind | target | outage ms | recovered after ms | error |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Faults {
		fmt.Fprintf(b, "| %.1f | %s | %s | %d | %d | %s |\n", float64(f.AtMS)/1000, f.Kind, f.Target, f.DownMS, f.RecoveredMS, f.Error)
	}
	b.WriteString("\n")
}

func writeProcesses(b *strings.Builder, r *Result) {
	if len(r.Processes) == 0 {
		return
	}
	b.WriteString("## Processes\n\n| process | peak RSS | mean CPU (cores) | stop | command |\n|---|---|---|---|---|\n")
	for _, p := range r.Processes {
		stop := ""
		if p.Stop != nil {
			stop = fmt.Sprintf("exit %d after %.2fs", p.Stop.ExitCode, p.Stop.Seconds)
			if p.Stop.Killed {
				stop += " (SIGKILL)"
			}
		}
		rss := fmtBytes(p.MaxRSS)
		if p.MaxRSS == 0 {
			rss = "–"
		}
		cmd := ""
		if len(p.Args) > 0 {
			cmd = "`mesh " + strings.ReplaceAll(joinArgs(p.Args), "|", `\|`) + "`"
		}
		fmt.Fprintf(b, "| %s | %s | %.2f | %s | %s |\n", p.Name, rss, p.MeanCPU, stop, cmd)
	}
	b.WriteString("\n")
}

func writeCounters(b *strings.Builder, r *Result) {
	if r.Mesh == nil || len(r.Mesh.Counters) == 0 {
		return
	}
	b.WriteString("## The mesh's own counters (measured phase, all processes)\n\n| counter | value |\n|---|---|\n")
	for _, k := range slices.Sorted(maps.Keys(r.Mesh.Counters)) {
		fmt.Fprintf(b, "| %s | %s |\n", k, fmtNum(r.Mesh.Counters[k]))
	}
	b.WriteString("\n")
}

func writeCeiling(b *strings.Builder, r *Result) {
	c := r.Ceiling
	if c == nil || c.Batched == nil {
		return
	}
	b.WriteString("## Bare-pipeline ceiling (same run)\n\n| variant | tasks/s | p50 ms | p99 ms | shape |\n|---|---|---|---|---|\n")
	x := c.Batched
	fmt.Fprintf(b, "| batched | %s | %s | %s | ≤%d per statement, %d inserters, %d claimers, mean claim %.0f |\n",
		fmtRate(x.TasksPerSec), fmtF(x.P50MS), fmtF(x.P99MS), x.MaxBatch, x.Inserters, x.Claimers, x.MeanClaim)
	if s := c.Single; s != nil {
		fmt.Fprintf(b, "| one round trip per operation | %s | %s | %s | %d loops |\n", fmtRate(s.TasksPerSec), fmtF(s.P50MS), fmtF(s.P99MS), s.Concurrency)
	}
	b.WriteString("\n")
}

func writeReproduce(b *strings.Builder, r *Result) {
	b.WriteString("## Reproduce\n\n```sh\ngo tool -modfile=tools.mod task bench -- --scenario " + r.Scenario.Name)
	if r.Quick {
		b.WriteString(" --quick")
	}
	b.WriteString("\n```\n\n<details><summary>Scenario as run</summary>\n\n```json\n")
	sc, _ := json.MarshalIndent(r.Scenario, "", "  ")
	b.Write(sc)
	b.WriteString("\n```\n\n</details>\n")
}

// WriteResultFiles writes <outDir>/<scenario>/<stem>.json, .md and the
// plots, and returns their paths (the JSON first).
func WriteResultFiles(outDir string, r *Result, stem string) ([]string, error) {
	dir := filepath.Join(outDir, r.Scenario.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	write := func(name string, render func(io.Writer) error) error {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		if err := render(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("writing %s: %w", p, err)
		}
		paths = append(paths, p)
		return f.Close()
	}
	if err := write(stem+".json", r.WriteJSON); err != nil {
		return paths, err
	}
	if err := write(stem+".md", func(w io.Writer) error { return WriteMarkdown(w, r, stem) }); err != nil {
		return paths, err
	}
	for _, p := range Plots(r) {
		if err := write(stem+"-"+p.Suffix+".svg", func(w io.Writer) error {
			_, err := io.WriteString(w, p.SVG)
			return err
		}); err != nil {
			return paths, err
		}
	}
	return paths, nil
}
