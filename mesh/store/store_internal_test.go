package store

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCleanText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},             // untouched
		{"a\x00b", 10, "ab"},               // NUL cannot be stored in text
		{"a\xffb", 10, "a\uFFFDb"},         // invalid UTF-8 replaced
		{"héllo", 2, "h"},                  // cut before a split rune, not inside it
		{strings.Repeat("x", 5), 3, "xxx"}, // plain cut
		{"\x00\x00", 10, ""},               // only NULs
	}
	for _, tt := range tests {
		if got := cleanText(tt.in, tt.max); got != tt.want {
			t.Errorf("cleanText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestIDBefore(t *testing.T) {
	t.Parallel()
	at := time.Now()
	id := newID() // generated at or after at
	cmp := func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) }
	if cmp(idBefore(at), id) > 0 {
		t.Errorf("an id generated after at sorts below idBefore(at)")
	}
	if cmp(idBefore(at.Add(time.Second)), id) <= 0 {
		t.Errorf("an id generated before at+1s does not sort below idBefore(at+1s)")
	}
	if cmp(idBefore(at.Add(-time.Second)), id) >= 0 {
		t.Errorf("idBefore(at-1s) does not sort below a newer id")
	}
	if idBefore(time.Unix(0, 0)) != [16]byte{} {
		t.Error("epoch bound is not the zero id")
	}
}

func TestParseQueries(t *testing.T) {
	t.Parallel()
	q := parseQueries("-- header\n-- name: a\n-- doc\nSELECT 1\nFROM x\n\n-- name: b\nSELECT 2\n")
	if len(q) != 2 || q["a"] != "SELECT 1\nFROM x" || q["b"] != "SELECT 2" {
		t.Fatalf("parseQueries = %q", q)
	}
	s := New(nil, Config{Schema: `we"ird`})
	if !strings.Contains(s.q.get, `"we""ird".tasks`) || strings.Contains(s.q.get, "{") {
		t.Fatalf("get query = %s", s.q.get)
	}
	if got := s.q.finish.sql(2); strings.Count(got, "::uuid,") != 2 || !strings.Contains(got, "$10::timestamptz") {
		t.Fatalf("finish for 2 rows = %s", got)
	}
}

func TestPaddedRows(t *testing.T) {
	t.Parallel()
	tests := []struct{ n, want int }{
		{1, 1},     // a single row is not padded
		{3, 4},     // up to the next power of two
		{128, 128}, // a power of two stays
		{200, 256}, // a typical batch
		{600, MaxRowsPerStatement},
		{MaxRowsPerStatement, MaxRowsPerStatement}, // capped: never above the chunk size
	}
	for _, tt := range tests {
		if got := paddedRows(tt.n); got != tt.want {
			t.Errorf("paddedRows(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
	c := &valuesCache{tmpl: "{values}", first: 2, casts: []string{"::a", "::b"}}
	sql, args := c.build(3, []any{"lead", 1, 2, 3, 4, 5, 6})
	if sql != "($2::a, $3::b), ($4::a, $5::b), ($6::a, $7::b), ($8::a, $9::b)" || len(args) != 9 || args[7] != nil || args[8] != nil {
		t.Fatalf("build(3) = %s, %v", sql, args)
	}
}
