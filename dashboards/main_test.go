package dashboards

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false,
	"rewrite dashboards/*.json from the generator (run it alone: go test ./dashboards -run TestGolden -update)")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
