package loadgen_test

import (
	"fmt"
	"time"

	"github.com/agentmesh/agentmesh/loadgen"
)

// Intended send times of a ramp from 0 to 1,000 tasks/s over a second: the
// 500 hits of the ramp, then the constant rate.
func ExampleLinearPacer() {
	p := loadgen.LinearPacer{From: 0, To: 1000, Over: time.Second}
	for _, n := range []uint64{0, 5, 125, 500, 1000} {
		at, _ := p.At(n)
		fmt.Printf("hit %4d at %v\n", n, at)
	}
	// Output:
	// hit    0 at 0s
	// hit    5 at 100ms
	// hit  125 at 500ms
	// hit  500 at 1s
	// hit 1000 at 1.5s
}

// A step schedule ends after its last step.
func ExampleStepPacer() {
	steps, _ := loadgen.ParseSteps("100:1s,1000:1s")
	p := loadgen.StepPacer{Steps: steps}
	for _, n := range []uint64{99, 100, 1099, 1100} {
		at, ok := p.At(n)
		fmt.Println(n, at, ok)
	}
	// Output:
	// 99 990ms true
	// 100 1s true
	// 1099 1.999s true
	// 1100 0s false
}
