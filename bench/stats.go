package bench

import (
	"math"
	"slices"
)

// Alternative is the alternative hypothesis of a rank test.
type Alternative int

// The alternatives: x and y differ (two-sided), x tends to be less than y,
// or greater.
const (
	TwoSided Alternative = iota
	Less
	Greater
)

// MannWhitney is the result of a Mann-Whitney U test.
type MannWhitney struct {
	// U is the statistic of the first sample: the number of pairs (x, y)
	// with x > y, ties counting one half.
	U float64
	// P is the p-value under the chosen alternative.
	P float64
	// Exact is true when P comes from the exact distribution of U (small
	// samples without ties), false for the normal approximation with tie
	// and continuity corrections.
	Exact bool
}

// exactLimit bounds the sample sizes tested exactly (the distribution has
// n1·n2+1 points; counts fit a float64 well past this).
const exactLimit = 50

// MannWhitneyU tests whether x and y come from the same distribution
// against alt, as scipy.stats.mannwhitneyu does with method "auto": exact
// when both samples are at most 50 long and have no ties, else the normal
// approximation with tie correction and continuity correction. Empty
// samples give P = 1.
func MannWhitneyU(x, y []float64, alt Alternative) MannWhitney {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return MannWhitney{P: 1}
	}
	ranks, tieTerm := rank(append(slices.Clone(x), y...))
	var r1 float64
	for i := range n1 {
		r1 += ranks[i]
	}
	u1 := r1 - float64(n1*(n1+1))/2
	res := MannWhitney{U: u1}
	if n1 <= exactLimit && n2 <= exactLimit && tieTerm == 0 {
		res.Exact = true
		res.P = exactP(u1, n1, n2, alt)
		return res
	}
	res.P = normalP(u1, n1, n2, tieTerm, alt)
	return res
}

// rank returns the ranks (1-based, ties averaged) of v and Σ(t³ − t) over
// groups of ties.
func rank(v []float64) ([]float64, float64) {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case v[a] < v[b]:
			return -1
		case v[a] > v[b]:
			return 1
		}
		return 0
	})
	ranks := make([]float64, len(v))
	var tie float64
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && v[idx[j+1]] == v[idx[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			ranks[idx[k]] = avg
		}
		if t := float64(j - i + 1); t > 1 {
			tie += t*t*t - t
		}
		i = j + 1
	}
	return ranks, tie
}

// uCounts returns, for samples of n1 and n2, how many of the C(n1+n2, n1)
// arrangements give each U = 0 … n1·n2.
func uCounts(n1, n2 int) []float64 {
	// f[m][n][u] = f[m-1][n][u-n] + f[m][n-1][u]: the largest value is
	// either from the first sample (it beats all n of the second) or not.
	prev := make([][]float64, n2+1) // row m-1
	for n := 0; n <= n2; n++ {
		prev[n] = []float64{1} // m = 0: U = 0 in one way
	}
	for m := 1; m <= n1; m++ {
		cur := make([][]float64, n2+1)
		cur[0] = []float64{1}
		for n := 1; n <= n2; n++ {
			c := make([]float64, m*n+1)
			for u, k := range prev[n] {
				c[u+n] += k
			}
			for u, k := range cur[n-1] {
				c[u] += k
			}
			cur[n] = c
		}
		prev = cur
	}
	return prev[n2]
}

func exactP(u1 float64, n1, n2 int, alt Alternative) float64 {
	counts := uCounts(n1, n2)
	var total float64
	for _, c := range counts {
		total += c
	}
	cdf := func(u float64) float64 { // P(U ≤ u)
		var s float64
		for k, c := range counts {
			if float64(k) <= u+1e-9 {
				s += c
			}
		}
		return s / total
	}
	sf := func(u float64) float64 { // P(U ≥ u)
		var s float64
		for k, c := range counts {
			if float64(k) >= u-1e-9 {
				s += c
			}
		}
		return s / total
	}
	switch alt {
	case Less:
		return cdf(u1)
	case Greater:
		return sf(u1)
	}
	return math.Min(1, 2*math.Min(cdf(u1), sf(u1)))
}

func normalP(u1 float64, n1, n2 int, tieTerm float64, alt Alternative) float64 {
	fn1, fn2 := float64(n1), float64(n2)
	n := fn1 + fn2
	mu := fn1 * fn2 / 2
	sigma := math.Sqrt(fn1 * fn2 / 12 * ((n + 1) - tieTerm/(n*(n-1))))
	if sigma == 0 {
		return 1
	}
	switch alt {
	case Less:
		return normCDF((u1 - mu + 0.5) / sigma)
	case Greater:
		return 1 - normCDF((u1-mu-0.5)/sigma)
	}
	z := (math.Abs(u1-mu) - 0.5) / sigma
	return math.Min(1, 2*(1-normCDF(z)))
}

func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// Median of v (NaN when empty).
func Median(v []float64) float64 {
	return Quantile(v, 0.5)
}

// Quantile of v at q (0–1), interpolating linearly between order
// statistics (NaN when empty).
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}
