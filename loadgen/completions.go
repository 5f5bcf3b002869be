package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// stream reads the producer's unbatched completion stream
// (GET /ws/completions) and hands every message to the recorder, stamped
// with the time it arrived. It reconnects when the connection drops; the
// events missed meanwhile are recovered by the GET checks after the drain.
type stream struct {
	url        string
	header     http.Header
	clock      *clock
	out        chan<- eventBatch
	log        *slog.Logger
	reconnects atomic.Int64
}

// completionsMessage is one message of the stream.
type completionsMessage struct {
	Type   string       `json:"type"`
	Events []task.Event `json:"events"`
}

func newStream(cfg *Config, clk *clock, out chan<- eventBatch) (*stream, error) {
	u, err := url.Parse(strings.TrimRight(cfg.Target, "/") + "/ws/completions")
	if err != nil {
		return nil, fmt.Errorf("completion stream URL: %w", err)
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	h := http.Header{}
	if cfg.Token != "" {
		h.Set("Authorization", "Bearer "+cfg.Token)
	}
	return &stream{url: u.String(), header: h, clock: clk, out: out, log: cfg.Logger}, nil
}

// dial connects to the stream.
func (s *stream) dial(ctx context.Context, timeout time.Duration) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: timeout, ReadBufferSize: 64 << 10}
	conn, resp, err := d.DialContext(ctx, s.url, s.header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", s.url, err)
	}
	conn.SetReadLimit(64 << 20)
	return conn, nil
}

// run reads conn until ctx ends, reconnecting with backoff when it drops.
func (s *stream) run(ctx context.Context, conn *websocket.Conn) {
	backoff := 50 * time.Millisecond
	for {
		err := s.read(ctx, conn)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("completion stream dropped; reconnecting", slog.String("error", err.Error()))
		for conn = nil; conn == nil; {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 2*time.Second)
			if conn, err = s.dial(ctx, 5*time.Second); err != nil {
				s.log.Warn("completion stream reconnect failed", slog.String("error", err.Error()))
			}
		}
		s.reconnects.Add(1)
		backoff = 50 * time.Millisecond
	}
}

// read forwards the messages of one connection until it fails or ctx ends.
func (s *stream) read(ctx context.Context, conn *websocket.Conn) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer func() {
		stop()
		_ = conn.Close()
	}()
	for {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		at := s.clock.now()
		var msg completionsMessage
		if err := json.Unmarshal(raw, &msg); err != nil {
			s.log.Warn("completion stream: undecodable message", slog.String("error", err.Error()))
			continue
		}
		if msg.Type != "completions" || len(msg.Events) == 0 {
			continue
		}
		select {
		case s.out <- eventBatch{at: at, events: msg.Events}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
