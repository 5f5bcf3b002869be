package producer

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/agentmesh/agentmesh/mesh/events"
	"github.com/agentmesh/agentmesh/mesh/metrics"
)

// handleWS is GET /ws: the coalesced dashboard stream.
func (p *Producer) handleWS(w http.ResponseWriter, r *http.Request) {
	p.serveWS(w, r, p.hub.Serve)
}

// handleCompletions is GET /ws/completions: the load generator's stream.
func (p *Producer) handleCompletions(w http.ResponseWriter, r *http.Request) {
	p.serveWS(w, r, p.hub.ServeCompletions)
}

func (p *Producer) serveWS(w http.ResponseWriter, r *http.Request, serve func(*websocket.Conn) error) {
	if !websocket.IsWebSocketUpgrade(r) {
		writeError(w, errBadJSON("expected a WebSocket upgrade request"))
		return
	}
	if !p.originAllowed(r) {
		writeError(w, errForbidden("origin "+quote(r.Header.Get("Origin"))+" may not open this WebSocket (see --allowed-origins)"))
		return
	}
	if err := p.hub.Accepting(); err != nil {
		writeError(w, errUnavailable(metrics.ReasonError, err.Error(), p.cfg.RetryAfter))
		return
	}
	conn, err := p.ws.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	if err := serve(conn); err != nil {
		code := websocket.CloseTryAgainLater
		if errors.Is(err, events.ErrClosed) {
			code = websocket.CloseGoingAway
		}
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, err.Error()), time.Now().Add(time.Second))
		_ = conn.Close()
		p.log.Debug("refused a WebSocket client", slog.Any("err", err))
	}
}

// originAllowed applies the origin policy (see Config.AllowedOrigins).
func (p *Producer) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if len(p.cfg.AllowedOrigins) == 0 {
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return u.Scheme == "http" || u.Scheme == "https"
		}
		return false
	}
	for _, a := range p.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}
