package store

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

//go:embed queries.sql
var queriesSQL string

// queries holds every statement of queries.sql with {schema} and {cols}
// filled in. Statements whose text depends on the batch size keep {values}
// and are expanded per size by a valuesCache.
type queries struct {
	insert       *valuesCache
	finish       *valuesCache
	byClientKey  string
	activate     string
	returnActive string
	release      string
	resetActive  string
	recoverable  string
	stalePending string
	get          string
	list         string // {where}, {limit} left in
	requeueDead  string // {where} left in
	purgeDead    string // {where} left in
	counts       string
}

// loadQueries parses queries.sql for schema (already sanitized).
func loadQueries(schema string) queries {
	all := parseQueries(queriesSQL)
	r := strings.NewReplacer("{schema}", schema, "{cols}", taskCols)
	get := func(name string) string {
		q, ok := all[name]
		if !ok {
			panic("store: queries.sql has no query " + name)
		}
		return r.Replace(q)
	}
	return queries{
		insert: &valuesCache{tmpl: get("insert"), first: 1, casts: []string{
			"::uuid", "::text", "::bytea", "::text", "::smallint", "::integer", "::jsonb", "::uuid", "::smallint"}},
		// finish: $1 worker, $2 next-stage ids, then (id, attempt, err, retry_at).
		finish:       &valuesCache{tmpl: get("finish"), first: 3, casts: []string{"::uuid", "::integer", "::text", "::timestamptz"}},
		byClientKey:  get("by_client_key"),
		activate:     get("activate"),
		returnActive: get("return_active"),
		release:      get("release"),
		resetActive:  get("reset_active"),
		recoverable:  get("recoverable"),
		stalePending: get("stale_pending"),
		get:          get("get"),
		list:         get("list"),
		requeueDead:  get("requeue_dead"),
		purgeDead:    get("purge_dead"),
		counts:       get("counts"),
	}
}

// parseQueries splits the text into sections named by `-- name: x` lines.
// Comment lines inside a section are dropped, so pg_stat_statements and
// error messages show the bare statement.
func parseQueries(text string) map[string]string {
	out := map[string]string{}
	var name string
	var b strings.Builder
	flush := func() {
		if name != "" {
			out[name] = strings.TrimSpace(b.String())
		}
		b.Reset()
	}
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if n, ok := strings.CutPrefix(trimmed, "-- name:"); ok {
			flush()
			name = strings.TrimSpace(n)
			continue
		}
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		b.WriteString(line)
	}
	flush()
	return out
}

// valuesCache expands the {values} of a statement into parameter tuples,
// numbered from first, each parameter with its column's cast. A batch of n
// rows is padded with NULL rows up to the next power of two (capped at
// MaxRowsPerStatement): adaptive batching produces every size, and each
// distinct text is a prepared statement of its own that PostgreSQL plans
// afresh for its first five runs before settling on a generic plan — with
// buckets there are a dozen texts per statement, planned once.
type valuesCache struct {
	tmpl  string
	first int
	casts []string // one per column
	texts sync.Map // rows → string
}

// paddedRows returns how many rows a batch of n is padded to.
func paddedRows(n int) int {
	b := 1
	for b < n {
		b <<= 1
	}
	return min(b, max(n, MaxRowsPerStatement))
}

// build returns the statement for a batch of n rows and args with NULL
// padding appended (args holds the leading parameters, then n rows).
func (c *valuesCache) build(n int, args []any) (string, []any) {
	padded := paddedRows(n)
	for range (padded - n) * len(c.casts) {
		args = append(args, nil)
	}
	return c.sql(padded), args
}

// sql returns the statement text for exactly n rows.
func (c *valuesCache) sql(n int) string {
	if s, ok := c.texts.Load(n); ok {
		return s.(string)
	}
	var b strings.Builder
	p := c.first
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, cast := range c.casts {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(p))
			b.WriteString(cast)
			p++
		}
		b.WriteByte(')')
	}
	s := strings.Replace(c.tmpl, "{values}", b.String(), 1)
	c.texts.Store(n, s)
	return s
}

// maxParams is PostgreSQL's limit on parameters per statement.
const maxParams = 65535

func init() {
	if MaxRowsPerStatement*9+2 > maxParams {
		panic(fmt.Sprintf("store: MaxRowsPerStatement %d exceeds the parameter limit", MaxRowsPerStatement))
	}
}
