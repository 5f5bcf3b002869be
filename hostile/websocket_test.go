package hostile

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
)

// wsClients reads agentmesh_ws_clients{stream="ui"} from /metrics.
func (m *mesh) wsClients(t testing.TB) int {
	t.Helper()
	resp, err := http.Get(m.base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `agentmesh_ws_clients{stream="ui"} `) {
			v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return int(v)
		}
	}
	return 0
}

// TestIdleWebSocketsBoundedMemory holds 2,000 idle dashboard WebSockets
// (the configured maximum), measures the producer's RSS per connection and
// checks one more is refused (503 before the upgrade, or closed with 1013
// try-again-later after it).
func TestIdleWebSocketsBoundedMemory(t *testing.T) {
	t.Parallel()
	const n = 2000
	m := startProducer(t, "--max-ws-clients", strconv.Itoa(n))
	url := strings.Replace(m.base, "http://", "ws://", 1) + "/ws?token=" + token
	before := m.rss(t)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 256, WriteBufferSize: 256}
	conns := make([]*websocket.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for i := range n {
		c, resp, err := d.Dial(url, nil)
		if err != nil {
			t.Fatalf("WebSocket %d: %v (%v)", i, err, resp)
		}
		conns = append(conns, c)
	}
	meshtest.Eventually(t, 60*time.Second, func() bool { return m.wsClients(t) == n }, "%d clients registered", n)
	after := m.rss(t)
	per := float64(int64(after)-int64(before)) / n
	t.Logf("producer RSS %d KiB with no WebSocket, %d KiB with %d idle ones: %.1f KiB per connection", before>>10, after>>10, n, per/1024)
	if per > 64<<10 {
		t.Errorf("%.0f KiB of RSS per idle WebSocket: unbounded buffering?", per/1024)
	}
	// One past the maximum is refused.
	c, resp, err := d.Dial(url, nil)
	switch {
	case err != nil:
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("client %d: %v (%v), want 503", n+1, err, resp)
		}
	default:
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			if _, _, err = c.ReadMessage(); err != nil {
				break
			}
		}
		_ = c.Close()
		if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseTryAgainLater {
			t.Errorf("client %d past --max-ws-clients: %v, want a close with 1013", n+1, err)
		}
	}
	if got := m.wsClients(t); got != n {
		t.Errorf("%d clients registered after the refusal, want %d", got, n)
	}
}
