package producer

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Fuzz targets for every decoder of outside input. Seeds are added here and
// committed under testdata/fuzz/<target>/; run one with e.g.
//
//	go test -run '^$' -fuzz FuzzDecodeSpec -fuzztime 30s ./mesh/producer

// checkErr holds for every refusal: a client error with a code and a
// readable message.
func checkErr(t *testing.T, ae *apiError) {
	t.Helper()
	if ae.Status != 400 && ae.Status != 422 {
		t.Fatalf("status %d for bad input: %+v", ae.Status, ae)
	}
	if ae.Code == "" || ae.Message == "" || !utf8.ValidString(ae.Message) || !utf8.ValidString(ae.Field) {
		t.Fatalf("bad error %+v", ae)
	}
	if _, err := json.Marshal(errorBody{Error: errorDetail{Code: ae.Code, Message: ae.Message, Field: ae.Field}}); err != nil {
		t.Fatal(err)
	}
}

// checkSpec holds for every accepted spec: what the store will accept.
func checkSpec(t *testing.T, sp task.Spec, pipeline bool) {
	t.Helper()
	again := sp
	if err := again.Validate(); err != nil {
		t.Fatalf("accepted spec fails Validate: %v (%+v)", err, sp)
	}
	if pipeline && sp.Role != task.Architect {
		t.Fatalf("pipeline with role %s", sp.Role)
	}
	if !json.Valid(sp.Payload) || bytes.Contains(sp.Payload, []byte(`\u0000`)) || len(sp.Payload) > task.MaxPayloadBytes {
		t.Fatalf("accepted payload %q", sp.Payload)
	}
	if jsonDepth(sp.Payload, MaxJSONDepth) > MaxJSONDepth {
		t.Fatalf("accepted payload nested too deep")
	}
	if !utf8.ValidString(sp.ClientKey) || strings.IndexByte(sp.ClientKey, 0) >= 0 || len(sp.ClientKey) > task.MaxClientKeyLen {
		t.Fatalf("accepted client key %q", sp.ClientKey)
	}
}

// body runs the handler's text checks, then decode.
func body[T any](data []byte, decode func([]byte) (T, *apiError)) (T, *apiError) {
	if ae := checkJSONText(data); ae != nil {
		var zero T
		return zero, ae
	}
	return decode(data)
}

func specSeeds(f *testing.F) {
	for _, s := range []string{
		`{"role":"QA"}`,
		`{"role":"ARCHITECT","priority":0,"payload":{"a":[1,2,{"b":null}]},"max_attempts":5,"client_key":"k-1"}`,
		`{"role":"DEVELOPER","priority":"1"}`,
		`{"role":"QA","payload":"\u0000"}`,
		`{"role":"QA","payload":{"x":"\ud800"}}`,
		`{"role":"QA","x":1}`,
		`{"role":"QA"} trailing`,
		`[[[[[[[[[[]]]]]]]]]]`,
		`{"role":"QA","priority":1e400}`,
		"{\"role\":\"QA\",\"client_key\":\"\xff\"}",
		``,
		`null`,
	} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"role":"QA","client_key":"a"}`), "b")
	f.Add([]byte(`{"role":"QA"}`), "key\x00")
}

func FuzzDecodeSpec(f *testing.F) {
	specSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		sp, ae := body(data, func(d []byte) (task.Spec, *apiError) { return decodeSpec(d, key) })
		if ae != nil {
			checkErr(t, ae)
			return
		}
		checkSpec(t, sp, false)
	})
}

func FuzzDecodePipeline(f *testing.F) {
	specSeeds(f)
	f.Add([]byte(`{"payload":{"feature":"login"},"priority":1,"client_key":"p-1","max_attempts":2}`), "")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		sp, ae := body(data, func(d []byte) (task.Spec, *apiError) { return decodePipeline(d, key) })
		if ae != nil {
			checkErr(t, ae)
			return
		}
		checkSpec(t, sp, true)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"tasks":[{"role":"QA"},{"role":"ARCHITECT","priority":3}]}`,
		`{"tasks":[]}`,
		`{"tasks":[{"role":"QA"},7]}`,
		`{"tasks":[{"role":"QA"},{"role":"CEO"}]}`,
		`{"tasks":null}`,
		`{"tasks":[{"role":"QA","payload":[[[[[]]]]]}]}`,
		`{"tasks":[{"role":"QA"}],"extra":true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, ae := body(data, func(d []byte) ([]task.Spec, *apiError) { return decodeBatch(d, 10) })
		if ae != nil {
			checkErr(t, ae)
			return
		}
		if len(specs) == 0 || len(specs) > 10 {
			t.Fatalf("accepted %d specs", len(specs))
		}
		for _, sp := range specs {
			checkSpec(t, sp, false)
		}
	})
}

func FuzzListQuery(f *testing.F) {
	for _, s := range []string{
		"state=pending&role=QA&limit=10",
		"cursor=AQAF8ZqO3LxgAZNsN1ot0GKJ9n4tRBeY0A&limit=500",
		"limit=-1",
		"limit=99999999999999999999",
		"state=PENDING",
		"role=qa",
		"cursor=%00%ff",
		"role=&state=&limit=&cursor=",
		"a=b;c=d",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, dead bool) {
		v, _ := url.ParseQuery(raw)
		flt, ae := parseListQuery(v, dead)
		if ae != nil {
			checkErr(t, ae)
			return
		}
		if (flt.State != "" && !flt.State.Valid()) || (flt.Role != "" && !flt.Role.Valid()) {
			t.Fatalf("accepted filter %+v", flt)
		}
		if flt.Limit < 0 || flt.Limit > store.MaxListLimit || len(flt.Cursor) > maxCursorLen {
			t.Fatalf("accepted filter %+v", flt)
		}
		if dead && flt.State != task.Dead {
			t.Fatalf("dead listing with state %q", flt.State)
		}
	})
}

func FuzzDecodeAdmission(f *testing.F) {
	for _, s := range []string{`{"paused":true}`, `{"paused":false}`, `{}`, `{"paused":1}`, `{"paused":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, ae := body(data, decodeAdmission); ae != nil {
			checkErr(t, ae)
		}
	})
}

func FuzzDecodeSimulate(f *testing.F) {
	for _, s := range []string{
		`{"rate":500,"seconds":10,"pipeline_fraction":0.2}`,
		`{"rate":5001,"seconds":10}`,
		`{"rate":1,"seconds":1,"pipeline_fraction":-0}`,
		`{"rate":1.5,"seconds":1}`,
		`{"rate":1,"seconds":1,"pipeline_fraction":1e309}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ae := body(data, decodeSimulate)
		if ae != nil {
			checkErr(t, ae)
			return
		}
		if s.Rate < 1 || s.Rate > MaxSimulateRate || s.Seconds < 1 || s.Seconds > MaxSimulateSeconds ||
			!(s.PipelineFraction >= 0 && s.PipelineFraction <= 1) {
			t.Fatalf("accepted %+v", s)
		}
	})
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"0b5e1a5c-3f49-4d7e-9f5c-8d0e2a1b4c6d", "urn:uuid:0b5e1a5c-3f49-4d7e-9f5c-8d0e2a1b4c6d",
		"{0b5e1a5c-3f49-4d7e-9f5c-8d0e2a1b4c6d}", "0b5e1a5c3f494d7e9f5c8d0e2a1b4c6d", "batch", "", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ae := parseID(s)
		if ae != nil {
			checkErr(t, ae)
			return
		}
		if id.String() != strings.ToLower(s) {
			t.Fatalf("parsed %q as %s", s, id)
		}
	})
}

// TestJSONDepth pins the nesting scanner: strings and escapes do not count.
func TestJSONDepth(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want int
	}{
		{`{}`, 1},                 // one object
		{`{"a":[1,{"b":[]}]}`, 4}, // nested
		{`{"a":"[[[[{{{{"}`, 1},   // brackets in a string
		{`{"a":"\"[[["}`, 1},      // escaped quote inside a string
		{`{"a":"\\"}`, 1},         // escaped backslash closes the string
		{`"x"`, 0},                // a scalar
	} {
		if got := jsonDepth([]byte(c.in), 100); got != c.want {
			t.Errorf("jsonDepth(%s) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestOpenAPICoversRoutes: the OpenAPI file and the routing table describe
// the same routes.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	inTable := map[string]bool{}
	for _, rt := range (&Producer{}).table() {
		key := strings.ToLower(rt.method) + " " + rt.path
		inTable[key] = true
		if _, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("openapi.json lacks %s", key)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !inTable[method+" "+path] {
				t.Errorf("openapi.json describes %s %s, which is not routed", method, path)
			}
		}
	}
}
