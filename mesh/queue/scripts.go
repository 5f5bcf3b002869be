package queue

import (
	"context"
	"embed"
	"errors"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

// The Lua scripts; each file documents its KEYS and ARGV.
var (
	claimScript   = loadScript("claim.lua")
	retryScript   = loadScript("retry.lua")
	promoteScript = loadScript("promote.lua")
	returnScript  = loadScript("return.lua")
	releaseScript = loadScript("release.lua")
	leaderScript  = loadScript("leader.lua")
	resignScript  = loadScript("resign.lua")
	pruneScript   = loadScript("prune.lua")
)

func loadScript(name string) *redis.Script {
	src, err := luaFS.ReadFile("lua/" + name)
	if err != nil {
		panic("queue: missing embedded script " + name)
	}
	return redis.NewScript(string(src))
}

// batch is one pipeline of plain commands and script calls, sent in one
// round trip. Script calls go as EVALSHA; those a Redis without the script
// cached (a restarted one) refuses with NOSCRIPT run again as EVAL.
type batch struct {
	rdb   redis.UniversalClient
	pipe  redis.Pipeliner
	calls []*scriptCall
}

type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

func (q *Queue) newBatch() *batch {
	return &batch{rdb: q.rdb, pipe: q.rdb.Pipeline()}
}

// eval queues a script call; its result is in the returned call's cmd after exec.
func (b *batch) eval(ctx context.Context, s *redis.Script, keys []string, args ...any) *scriptCall {
	c := &scriptCall{script: s, keys: keys, args: args}
	c.cmd = s.EvalSha(ctx, b.pipe, keys, args...)
	b.calls = append(b.calls, c)
	return c
}

// exec sends the batch and returns the first error, if any (redis.Nil
// replies are not errors here).
func (b *batch) exec(ctx context.Context) error {
	if b.pipe.Len() == 0 {
		return nil
	}
	cmds, _ := b.pipe.Exec(ctx)
	var again []*scriptCall
	for _, c := range b.calls {
		if isNoScript(c.cmd.Err()) {
			again = append(again, c)
		}
	}
	if len(again) > 0 {
		p := b.rdb.Pipeline()
		for _, c := range again {
			c.cmd = c.script.Eval(ctx, p, c.keys, c.args...)
		}
		_, _ = p.Exec(ctx)
		for _, c := range again {
			cmds = append(cmds, c.cmd)
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) && !isNoScript(err) {
			return err
		}
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}
