package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/visitrelay/visitrelay/internal/heartbeat"
)

// maxSites bounds the heartbeats kept, so that a leafnode sending under
// many site names cannot grow the gateway's memory without end.
const maxSites = 64

// siteBeat is the last heartbeat of one site.
type siteBeat struct {
	msg        heartbeat.Message
	receivedAt time.Time
}

// heartbeats keeps the last heartbeat of each site.
type heartbeats struct {
	mu    sync.Mutex
	sites map[string]siteBeat
}

// startHeartbeats subscribes to the appliances' heartbeats and replies to
// each with the gateway's clock and buffer runway. The subscription ends
// when the gateway's NATS connection closes.
func (g *Gateway) startHeartbeats() error {
	g.beats = &heartbeats{sites: map[string]siteBeat{}}
	_, err := g.nc.Subscribe(heartbeat.SubjectAll, g.handleHeartbeat)
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", heartbeat.SubjectAll, err)
	}
	return nil
}

func (g *Gateway) handleHeartbeat(m *nats.Msg) {
	now := time.Now()
	var msg heartbeat.Message
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		g.logger.Warn("heartbeat not decodable; ignored", "subject", m.Subject, "error", err)
		return
	}
	// The subject names the site, so a message that claims another one is
	// recorded under the subject's.
	msg.Site = strings.TrimPrefix(m.Subject, "visitrelay.heartbeat.")
	msg.Summary = truncate(msg.Summary, 500)
	msg.Server, msg.Version = truncate(msg.Server, 100), truncate(msg.Version, 100)

	g.beats.mu.Lock()
	_, known := g.beats.sites[msg.Site]
	if known || len(g.beats.sites) < maxSites {
		g.beats.sites[msg.Site] = siteBeat{msg: msg, receivedAt: now}
	}
	g.beats.mu.Unlock()
	if !known {
		g.logger.Info("first heartbeat from site", "site", msg.Site, "server", msg.Server, "version", msg.Version)
	}

	if m.Reply == "" {
		return
	}
	st := g.status.snapshot()
	answer := heartbeat.Reply{GatewayTime: time.Now().UTC(), RunwayDays: st.Runway.Days}
	if st.NotSourced.Known {
		answer.NotSourced, answer.OldestNotSourcedAt = &st.NotSourced.Pending, st.NotSourced.OldestAcceptedAt
	}
	reply, _ := json.Marshal(answer)
	if err := m.Respond(reply); err != nil {
		g.logger.Warn("reply to heartbeat failed", "site", msg.Site, "error", err)
	}
}

// list returns the last heartbeat of every site.
func (h *heartbeats) list() []siteBeat {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]siteBeat, 0, len(h.sites))
	for _, b := range h.sites {
		out = append(out, b)
	}
	return out
}

// site returns the last heartbeat of one site.
func (h *heartbeats) site(name string) (siteBeat, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.sites[name]
	return b, ok
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
