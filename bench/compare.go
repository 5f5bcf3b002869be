package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// CompareMetric is one figure compared between two sets of results.
type CompareMetric struct {
	Name string
	// Higher is true when a larger value is better.
	Higher bool
	// Threshold is the relative change (0.05 = 5 %) below which a change
	// is not reported as better or worse, however significant.
	Threshold float64
	Get       func(*Result) float64
}

// CompareMetrics are the metrics `mesh bench compare` reports.
var CompareMetrics = []CompareMetric{
	{"throughput (tasks/s)", true, 0.05, func(r *Result) float64 { return r.Summary.TasksPerSec }},
	{"ceiling ratio", true, 0.05, func(r *Result) float64 { return r.Summary.CeilingRatio }},
	{"p50 e2e (ms)", false, 0.10, func(r *Result) float64 { return r.Summary.P50MS }},
	{"p99 e2e (ms)", false, 0.15, func(r *Result) float64 { return r.Summary.P99MS }},
	{"p99.9 e2e (ms)", false, 0.25, func(r *Result) float64 { return r.Summary.P999MS }},
	{"RSS max (MiB)", false, 0.10, func(r *Result) float64 { return float64(r.Summary.RSSMaxBytes) / (1 << 20) }},
	{"error ratio", false, 0.10, func(r *Result) float64 { return r.Summary.ErrorRatio }},
	{"lost + duplicates", false, 0, func(r *Result) float64 { return float64(r.Summary.Lost + r.Summary.Duplicates) }},
}

// Verdicts of a comparison.
const (
	VerdictBetter   = "better"
	VerdictWorse    = "worse"
	VerdictSame     = "no significant change"
	VerdictUntested = "untested"
)

// Alpha is the significance level of comparisons and of the gate.
const Alpha = 0.05

// Comparison is one metric compared.
type Comparison struct {
	Metric string
	// A and B are the values of each side; MedianA/MedianB their medians,
	// MinX/MaxX their spread.
	A, B             []float64
	MedianA, MedianB float64
	// Change is (MedianB − MedianA) / MedianA (NaN when MedianA is 0).
	Change float64
	// P is the two-sided Mann-Whitney p-value (1 when a side has one value).
	P       float64
	Verdict string
	Why     string
}

// Compare compares result sets a (before) and b (after), metric by metric.
// A change is "better" or "worse" only when it passes the metric's
// threshold and, with at least two trials per side, the rank test says
// p < Alpha; with one trial per side a change past the threshold is
// reported as "worse?"/"better?" (untested: no noise estimate).
func Compare(a, b []*Result, metrics []CompareMetric) []Comparison {
	out := make([]Comparison, 0, len(metrics))
	for _, m := range metrics {
		c := Comparison{Metric: m.Name}
		for _, r := range a {
			c.A = append(c.A, m.Get(r))
		}
		for _, r := range b {
			c.B = append(c.B, m.Get(r))
		}
		c.MedianA, c.MedianB = Median(c.A), Median(c.B)
		c.Change = relChange(c.MedianA, c.MedianB)
		c.P = 1
		if len(a) >= 2 && len(b) >= 2 {
			c.P = MannWhitneyU(c.A, c.B, TwoSided).P
		}
		c.Verdict, c.Why = verdict(m, &c, len(a) >= 2 && len(b) >= 2)
		out = append(out, c)
	}
	return out
}

func relChange(a, b float64) float64 {
	switch {
	case a == b:
		return 0
	case a == 0:
		return math.Inf(1) * math.Copysign(1, b)
	}
	return (b - a) / math.Abs(a)
}

func verdict(m CompareMetric, c *Comparison, tested bool) (string, string) {
	if c.MedianA == c.MedianB || (!math.IsInf(c.Change, 0) && math.Abs(c.Change) <= m.Threshold) {
		return VerdictSame, fmt.Sprintf("|change| ≤ %.0f%%", 100*m.Threshold)
	}
	better := (c.Change > 0) == m.Higher
	word := VerdictWorse
	if better {
		word = VerdictBetter
	}
	if !tested {
		return word + "?", "one trial per side: no noise estimate"
	}
	if c.P >= Alpha {
		return VerdictSame, fmt.Sprintf("p = %.3f ≥ %.2f", c.P, Alpha)
	}
	return word, fmt.Sprintf("p = %.3f", c.P)
}

// WriteComparison prints a comparison table.
func WriteComparison(w io.Writer, cs []Comparison, nA, nB int) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "metric\tA median [min–max] (n=%d)\tB median [min–max] (n=%d)\tchange\tp\tverdict\n", nA, nB)
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s (%s)\n", c.Metric, spread(c.A), spread(c.B), fmtChange(c.Change),
			fmtP(c.P, nA, nB), c.Verdict, c.Why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if nA < 4 || nB < 4 {
		_, err := fmt.Fprintf(w, "\nnote: with %d and %d trials the smallest two-sided p-value the rank test can give is %.3f; "+
			"use 4+ trials per side to detect a change at p < %.2f.\n", nA, nB, minP(nA, nB), Alpha)
		return err
	}
	return nil
}

// minP is the smallest two-sided exact p-value for samples of n1 and n2.
func minP(n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 1
	}
	return math.Min(1, 2/binom(n1+n2, n1))
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

func spread(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	if len(v) == 1 {
		return fmtTick(v[0])
	}
	return fmt.Sprintf("%s [%s–%s]", fmtTick(Median(v)), fmtTick(Quantile(v, 0)), fmtTick(Quantile(v, 1)))
}

func fmtChange(c float64) string {
	if math.IsNaN(c) || math.IsInf(c, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f%%", 100*c)
}

func fmtP(p float64, nA, nB int) string {
	if nA < 2 || nB < 2 {
		return "–"
	}
	return fmt.Sprintf("%.3f", p)
}

// ReadResultSet reads the results named by args: files, directories (every
// *.json result in them) and globs.
func ReadResultSet(args ...string) ([]*Result, error) {
	var out []*Result
	for _, a := range args {
		paths, err := expandResultPaths(a)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			r, err := ReadResultFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func expandResultPaths(a string) ([]string, error) {
	if st, err := os.Stat(a); err == nil && st.IsDir() {
		paths, _ := filepath.Glob(filepath.Join(a, "*.json"))
		if len(paths) == 0 {
			return nil, fmt.Errorf("%s: no result files", a)
		}
		return paths, nil
	}
	if strings.ContainsAny(a, "*?[") {
		paths, err := filepath.Glob(a)
		if err != nil || len(paths) == 0 {
			return nil, fmt.Errorf("%s: no result files", a)
		}
		return paths, nil
	}
	return []string{a}, nil
}
