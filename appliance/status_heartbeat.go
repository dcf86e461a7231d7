package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/visitrelay/visitrelay/internal/heartbeat"
)

// sendHeartbeats sends a heartbeat every heartbeat.Interval while the
// leafnode link is up, and at once when the link comes up, until ctx ends.
func (s *statusService) sendHeartbeats(ctx context.Context) {
	ticker := time.NewTicker(heartbeat.Interval)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.linkChanged:
		}
		if !s.a.ns.LeafConnected() {
			continue
		}

		err := s.sendHeartbeat(ctx)
		// Only the first failure and the recovery are logged, so a
		// gateway that does not respond logs one line, not one per beat.
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.logger.Warn("heartbeat to the gateway failed; retrying every interval", "interval", heartbeat.Interval, "error", err)
			failing = true
		case err == nil && failing:
			s.logger.Info("the gateway responds to heartbeats again")
			failing = false
		}
	}
}

// sendHeartbeat sends one heartbeat and records the gateway's reply: its
// clock, compared with the midpoint of the round trip, and its runway.
func (s *statusService) sendHeartbeat(ctx context.Context) error {
	sent := time.Now()
	data, err := json.Marshal(s.heartbeatMessage(sent))
	if err != nil {
		return fmt.Errorf("encode heartbeat: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := s.a.nc.RequestWithContext(ctx, heartbeat.Subject(s.a.cfg.NATS.Domain), data)
	if err != nil {
		return fmt.Errorf("send heartbeat: %w", err)
	}
	received := time.Now()

	var reply heartbeat.Reply
	if err := json.Unmarshal(resp.Data, &reply); err != nil {
		return fmt.Errorf("decode heartbeat reply: %w", err)
	}
	roundTrip := received.Sub(sent)
	s.mu.Lock()
	s.reply = heartbeatReply{at: received, skew: reply.GatewayTime.Sub(sent.Add(roundTrip / 2)), runwayDays: reply.RunwayDays,
		notSourced: reply.NotSourced, oldestNotSourcedAt: reply.OldestNotSourcedAt}
	s.mu.Unlock()
	return nil
}
