package bench

import (
	"math"
	"testing"
)

// Known values from scipy.stats.mannwhitneyu (1.11) and its documentation.
func TestMannWhitneyKnownValues(t *testing.T) {
	t.Parallel()
	males := []float64{19, 22, 16, 29, 24}
	females := []float64{20, 11, 17, 12}
	cases := []struct {
		name  string
		x, y  []float64
		alt   Alternative
		u, p  float64
		exact bool
	}{
		// scipy docs: mannwhitneyu(males, females, method="exact") → U1 17, p 0.1111…
		{"scipy docs exact", males, females, TwoSided, 17, 1.0 / 9, true},
		// Complete separation, 3 vs 3: the exact two-sided p is 2/C(6,3) = 0.1.
		{"separated 3v3", []float64{1, 2, 3}, []float64{4, 5, 6}, TwoSided, 0, 0.1, true},
		// One-sided, x less than y: 1/20.
		{"separated 3v3 less", []float64{1, 2, 3}, []float64{4, 5, 6}, Less, 0, 0.05, true},
		{"separated 3v3 greater", []float64{1, 2, 3}, []float64{4, 5, 6}, Greater, 0, 1, true},
		// 4 vs 4 one-sided: 1/C(8,4) = 1/70.
		{"separated 4v4 less", []float64{1, 2, 3, 4}, []float64{5, 6, 7, 8}, Less, 0, 1.0 / 70, true},
		// Ties force the normal approximation (as scipy's method "auto"):
		// x=[1,2,2,3], y=[2,3,4,5]: U1 = 2.5; σ² = n1·n2/12·((n+1) − Σ(t³−t)/(n(n−1)))
		// = 16/12·(9 − 30/56), z = (|2.5 − 8| − 0.5)/σ, p = erfc(z/√2) = 0.1366582477.
		{"ties", []float64{1, 2, 2, 3}, []float64{2, 3, 4, 5}, TwoSided, 2.5, 0.1366582477, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := MannWhitneyU(c.x, c.y, c.alt)
			if got.U != c.u || math.Abs(got.P-c.p) > 5e-5 || got.Exact != c.exact {
				t.Errorf("got U %g p %.6f exact %v, want U %g p %.6f exact %v", got.U, got.P, got.Exact, c.u, c.p, c.exact)
			}
		})
	}
}

func TestMannWhitneyNormalApproximation(t *testing.T) {
	t.Parallel()
	// scipy docs: method="asymptotic" on the docs' samples → 0.11134688653314041.
	if p := normalP(17, 5, 4, 0, TwoSided); math.Abs(p-0.11134688653314041) > 1e-12 {
		t.Errorf("p %.17f", p)
	}
}

func TestMannWhitneyLargeSamples(t *testing.T) {
	t.Parallel()
	var x, y []float64
	for i := range 60 {
		x = append(x, float64(i))
		y = append(y, float64(i)+0.5)
	}
	got := MannWhitneyU(x, y, TwoSided)
	if got.Exact || got.P < 0.5 {
		t.Errorf("overlapping samples of 60: %+v, want a large p from the normal approximation", got)
	}
	if p := MannWhitneyU(nil, y, TwoSided).P; p != 1 {
		t.Errorf("empty sample: p %g", p)
	}
}

func TestUCountsSumToBinomial(t *testing.T) {
	t.Parallel()
	for n1 := 1; n1 <= 6; n1++ {
		for n2 := 1; n2 <= 6; n2++ {
			var sum float64
			for _, c := range uCounts(n1, n2) {
				sum += c
			}
			if sum != binom(n1+n2, n1) {
				t.Errorf("n1 %d n2 %d: %g arrangements, want %g", n1, n2, sum, binom(n1+n2, n1))
			}
		}
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	v := []float64{4, 1, 3, 2}
	if m := Median(v); m != 2.5 {
		t.Errorf("median %g", m)
	}
	if q := Quantile(v, 1); q != 4 {
		t.Errorf("max %g", q)
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("median of nothing")
	}
	if minP(3, 3) != 0.1 || math.Abs(minP(4, 4)-2.0/70) > 1e-12 {
		t.Errorf("minP %g %g", minP(3, 3), minP(4, 4))
	}
}
