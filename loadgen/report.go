package loadgen

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// warnings lists what a reader of the result must not miss.
func (r *Result) warnings() []string {
	var w []string
	if r.Mode == OpenLoop && r.TargetRate > 0 && r.AchievedRate < MinRateRatio*r.TargetRate {
		w = append(w, fmt.Sprintf("GENERATOR BOTTLENECK: achieved %.1f/s is %.1f%% of the target %.1f/s (under %.0f%%): "+
			"the load generator, not the server, limited the load", r.AchievedRate, 100*r.AchievedRate/r.TargetRate,
			r.TargetRate, 100*MinRateRatio))
	}
	if lag := r.Latency.ScheduleLag; r.Mode == OpenLoop && lag != nil && r.MaxLagUS > 0 && lag.P99US > r.MaxLagUS {
		w = append(w, fmt.Sprintf("SCHEDULE LAG: p99 %s exceeds the bound %s: requests left late (all senders busy or "+
			"the generator starved of CPU); latencies still count from the intended time, but the load was offered "+
			"later than scheduled", fmtUS(lag.P99US), fmtUS(r.MaxLagUS)))
	}
	if r.Tasks.Lost > 0 {
		w = append(w, fmt.Sprintf("LOST: %d accepted tasks never completed", r.Tasks.Lost))
	}
	if r.Tasks.Duplicates > 0 {
		w = append(w, fmt.Sprintf("DUPLICATES: %d duplicate completion events", r.Tasks.Duplicates))
	}
	if r.Tasks.Late > 0 {
		w = append(w, fmt.Sprintf("LATE EVENTS: %d completions missing from the completion stream were found by GET", r.Tasks.Late))
	}
	if r.Tasks.Skipped > 0 {
		w = append(w, fmt.Sprintf("SKIPPED: %d tasks not sent because %s", r.Tasks.Skipped, "the pending limit was reached"))
	}
	if r.Interrupted {
		w = append(w, fmt.Sprintf("INTERRUPTED: the run was cancelled; %d accepted tasks were left unresolved", r.Tasks.Unresolved))
	}
	return w
}

// WriteReport writes the text report of a result, in the spirit of
// vegeta's: one line per aspect, then the latency table, then what went
// wrong.
func WriteReport(w io.Writer, r *Result) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	row := func(label, fields string, values ...string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", label, fields, strings.Join(values, ", "))
	}
	t := r.Tasks
	row("Mode", "", r.describe())
	if r.Mode == OpenLoop {
		row("Rate", "[target, achieved, ratio]", perS(r.TargetRate), perS(r.AchievedRate), pct(r.AchievedRate, r.TargetRate))
	}
	row("Tasks", "[total, rate, throughput]", n(t.Scheduled), perS(r.AchievedRate), perS(r.Throughput))
	row("Duration", "[total, send, drain]", fmtDur(r.End.Sub(r.Start)), fmtDur(r.SendEnd.Sub(r.Start)), fmtDur(r.End.Sub(r.SendEnd)))
	row("Requests", "[total, bytes out, bytes in]", n(r.HTTP.Requests), n(r.HTTP.BytesOut), n(r.HTTP.BytesIn))
	row("Outcome", "[sent, accepted, rejected, errors, skipped]", n(t.Sent), n(t.Accepted), n(t.Rejected), n(t.Errors), n(t.Skipped))
	if r.EndToEnd {
		row("Completion", "[completed, dead, late, lost, duplicates]", n(t.Completed), n(t.Dead), n(t.Late), n(t.Lost), n(t.Duplicates))
		row("Success", "[accepted, completed]", pct(float64(t.Accepted), float64(t.Scheduled)), pct(float64(t.Completed), float64(t.Scheduled)))
	} else {
		row("Success", "[accepted]", pct(float64(t.Accepted), float64(t.Scheduled)))
	}
	row("Status Codes", "[code:count]", statusCodes(r.HTTP.StatusCodes))
	_ = tw.Flush()
	b.WriteString("\n")
	writeLatencies(&b, r)
	writeProblems(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Result) describe() string {
	parts := []string{r.Mode, r.Schedule, "batch " + strconv.Itoa(r.Batch),
		fmt.Sprintf("pipelines %.0f%%", 100*r.PipelineFraction)}
	if r.EndToEnd {
		parts = append(parts, "end to end")
	} else {
		parts = append(parts, "submit only")
	}
	if r.Generators > 1 {
		parts = append(parts, fmt.Sprintf("%d generators merged", r.Generators))
	}
	if r.Mode == ClosedLoop {
		parts = append(parts, "latency from the actual send: coordinated omission applies")
	}
	return strings.Join(parts, " · ")
}

func writeLatencies(b *strings.Builder, r *Result) {
	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Latency\tcount\tp50\tp90\tp99\tp99.9\tmax\t")
	rows := []struct {
		name string
		h    *Histogram
		skip bool
	}{
		{"corrected (completion − intended)", r.Latency.Corrected, !r.EndToEnd},
		{"service (completion − sent)", r.Latency.Service, !r.EndToEnd},
		{"submit (2xx − intended)", r.Latency.Submit, false},
		{"schedule lag (sent − intended)", r.Latency.ScheduleLag, false},
	}
	for _, x := range rows {
		if x.skip || x.h == nil {
			continue
		}
		h := x.h
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", x.name, h.Count, fmtUS(h.P50US), fmtUS(h.P90US),
			fmtUS(h.P99US), fmtUS(h.P999US), fmtUS(h.MaxUS))
	}
	_ = tw.Flush()
}

func writeProblems(b *strings.Builder, r *Result) {
	if len(r.Errors) > 0 {
		b.WriteString("\nError Set:\n")
		for _, e := range r.Errors {
			fmt.Fprintf(b, "  %d× %s\n", e.Count, e.Error)
		}
	}
	if len(r.Lost) > 0 {
		fmt.Fprintf(b, "\nLost (%d of %d listed):\n", len(r.Lost), r.Tasks.Lost)
		for i, l := range r.Lost {
			if i == 20 {
				fmt.Fprintf(b, "  … %d more in the JSON result\n", len(r.Lost)-i)
				break
			}
			fmt.Fprintf(b, "  %s %s intended %s: %s\n", l.Kind, l.ID, l.Intended.Format(time.RFC3339Nano), l.State)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(b, "\n!!! %s\n", w)
	}
}

func statusCodes(m map[string]int64) string {
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	slices.SortFunc(codes, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = c + ":" + strconv.FormatInt(m[c], 10)
	}
	return strings.Join(parts, "  ")
}

func n(v int64) string { return strconv.FormatInt(v, 10) }

func perS(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "/s" }

func pct(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return strconv.FormatFloat(100*a/b, 'f', 2, 64) + "%"
}

// fmtUS renders microseconds as a readable duration with 4 significant
// digits: 850µs, 1.203ms, 2.5s.
func fmtUS(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + "µs"
	case us < 1_000_000:
		return strconv.FormatFloat(float64(us)/1e3, 'f', decimals(us/1000), 64) + "ms"
	default:
		return strconv.FormatFloat(float64(us)/1e6, 'f', decimals(us/1_000_000), 64) + "s"
	}
}

func decimals(whole int64) int {
	switch {
	case whole < 10:
		return 3
	case whole < 100:
		return 2
	}
	return 1
}

func fmtDur(d time.Duration) string { return fmtUS(max(d.Microseconds(), 0)) }
