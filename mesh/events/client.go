package events

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/agentmesh/agentmesh/mesh/metrics"
)

// Disconnect reasons (agentmesh_ws_disconnects_total{reason}).
const (
	reasonClosed     = "closed"      // the client closed, or its connection failed on read
	reasonSlow       = "slow"        // its buffer stayed full (MaxDrops drops, or a full completion buffer)
	reasonWriteError = "write_error" // a write failed or passed WriteTimeout
	reasonShutdown   = "shutdown"    // the hub closed
)

// maxClientMessage bounds what a client may send; the hub reads only
// control frames and discards data messages.
const maxClientMessage = 4 << 10

// outMsg is one queued message: a prepared message shared by many clients,
// or data (possibly shared, never modified) followed by this client's tail.
type outMsg struct {
	pm   *websocket.PreparedMessage
	data []byte
	tail []byte
}

// client is one WebSocket connection. Its writer goroutine is the only one
// writing data frames; its reader goroutine only reads (and discards) to
// process pongs and the close handshake.
type client struct {
	hub    *Hub
	conn   *websocket.Conn
	stream string
	send   chan outMsg

	dropped     atomic.Uint64 // frames dropped for it so far
	consecutive int           // drops in a row; only the tick goroutine touches it

	once   sync.Once
	done   chan struct{}
	reason atomic.Value // string, set once by kick
}

func newClient(h *Hub, conn *websocket.Conn, stream string, buffer int) *client {
	return &client{hub: h, conn: conn, stream: stream, send: make(chan outMsg, buffer), done: make(chan struct{})}
}

// kick asks the writer to close the connection; the first reason sticks.
func (c *client) kick(reason string) {
	c.once.Do(func() {
		c.reason.Store(reason)
		close(c.done)
	})
}

func (c *client) reasonOr(def string) string {
	if r, ok := c.reason.Load().(string); ok {
		return r
	}
	return def
}

// writeLoop writes queued messages and pings, each within WriteTimeout, and
// closes the connection with a close frame when kicked.
func (c *client) writeLoop() {
	cfg := &c.hub.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer func() {
		ping.Stop()
		_ = c.conn.Close()
		c.hub.remove(c)
		c.hub.wg.Done()
	}()
	for {
		select {
		case <-c.done:
			c.writeClose()
			return
		case m := <-c.send:
			if err := c.write(m); err != nil {
				c.kick(reasonWriteError)
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				c.kick(reasonWriteError)
				return
			}
		}
	}
}

func (c *client) write(m outMsg) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteTimeout)); err != nil {
		return err
	}
	var err error
	switch {
	case m.pm != nil:
		err = c.conn.WritePreparedMessage(m.pm)
	case m.tail != nil:
		err = c.writeParts(m.data, m.tail)
	default:
		err = c.conn.WriteMessage(websocket.TextMessage, m.data)
	}
	if err == nil && c.stream != metrics.StreamCompletions {
		c.hub.counters.frames.Add(1)
		c.hub.m.WSFrames(1)
	}
	return err
}

// writeParts writes one text message from two slices without joining them.
func (c *client) writeParts(a, b []byte) error {
	w, err := c.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write(a); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Close()
}

// writeClose sends a close frame saying why, best effort within a second.
func (c *client) writeClose() {
	code, text := websocket.CloseGoingAway, "server shutting down"
	switch c.reasonOr(reasonClosed) {
	case reasonSlow:
		code, text = websocket.CloseTryAgainLater, "client too slow: send buffer full"
	case reasonClosed:
		code, text = websocket.CloseNormalClosure, ""
	case reasonWriteError:
		return
	}
	deadline := time.Now().Add(min(time.Second, c.hub.cfg.WriteTimeout))
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline)
}

// readLoop reads until the connection fails, keeping the read deadline
// three ping intervals ahead of the last pong or message.
func (c *client) readLoop() {
	defer c.hub.wg.Done()
	wait := 3 * c.hub.cfg.PingInterval
	c.conn.SetReadLimit(maxClientMessage)
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(wait)) })
	for {
		if _, _, err := c.conn.NextReader(); err != nil {
			c.kick(reasonClosed)
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	}
}
