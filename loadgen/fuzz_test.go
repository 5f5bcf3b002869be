package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// FuzzDecodeResult feeds the result decoder arbitrary bytes: it must never
// panic or allocate without bound, and whatever it accepts must encode,
// decode to the same result again, merge and report. The seed corpus is
// under testdata/fuzz/FuzzDecodeResult (rewritten with -update).
func FuzzDecodeResult(f *testing.F) {
	whole, _ := synthRun(f, 1)
	var valid bytes.Buffer
	if err := whole.WriteJSON(&valid); err != nil {
		f.Fatal(err)
	}
	f.Add(valid.Bytes())
	if *update {
		writeSeedCorpus(f, valid.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResult(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := r.WriteJSON(&out); err != nil {
			t.Fatalf("encoding an accepted result: %v", err)
		}
		back, err := DecodeResult(&out)
		if err != nil {
			t.Fatalf("decoding a re-encoded result: %v", err)
		}
		if back.Tasks != r.Tasks || !back.Latency.Corrected.HDRHistogram().Equals(r.Latency.Corrected.HDRHistogram()) {
			t.Fatalf("the round trip changed the result")
		}
		if _, err := Merge(r, back); err != nil {
			t.Fatalf("merging a result with itself: %v", err)
		}
		if err := WriteReport(io.Discard, r); err != nil {
			t.Fatal(err)
		}
	})
}

func writeSeedCorpus(f *testing.F, valid []byte) {
	foreign := hdr.New(1, 1000, 2)
	_ = foreign.RecordValue(5)
	enc, _ := foreign.Encode(hdr.V2CompressedEncodingCookieBase)
	head := `{"schema":"agentmesh.loadgen.result/v1","generators":1,"mode":"open-loop"`
	seeds := map[string]string{
		"valid_full":        string(valid),
		"valid_minimal":     head + `}`,
		"wrong_schema":      `{"schema":"vegeta/v1","generators":1,"mode":"open-loop"}`,
		"foreign_geometry":  head + `,"latency":{"corrected":{"count":1,"hdr":"` + string(enc) + `"}}}`,
		"bad_base64":        head + `,"latency":{"service":{"count":1,"hdr":"HISTF!!!"}}}`,
		"count_without_hdr": head + `,"latency":{"submit":{"count":7}}}`,
		"negative_counts":   head + `,"tasks":{"sent":-1}}`,
		"bad_status":        head + `,"http":{"status_codes":{"abc":1}}}`,
		"series":            head + `,"series":[{"start_ms":1,"end_ms":2,"latency":{"corrected":{"hdr":""}}}]}`,
		"truncated":         string(valid[:len(valid)/2]),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeResult")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for name, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(s))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}
