// Package heartbeat defines the message that an appliance sends to the
// gateway every few seconds over the leafnode link, and the gateway's
// reply. The cloud cannot reach into the site, so the heartbeat is how the
// gateway's status page learns the site's figures, and the reply is how
// the appliance learns the gateway's clock and buffer runway.
package heartbeat

import (
	"time"

	"github.com/visitrelay/visitrelay/internal/health"
)

// Interval is how often an appliance sends a heartbeat.
const Interval = 10 * time.Second

// Late is how long after the last heartbeat the gateway warns. It spans
// a few missed heartbeats, so one lost message does not raise a warning.
const Late = 4 * Interval

// SubjectAll matches the heartbeats of every site; the gateway subscribes
// to it.
const SubjectAll = "visitrelay.heartbeat.*"

// Subject returns the subject of the heartbeat of the site with JetStream
// domain site. The appliance sends it as a request; the reply is a Reply.
func Subject(site string) string {
	return "visitrelay.heartbeat." + site
}

// Message is one heartbeat: the appliance's own figures.
type Message struct {
	// Site is the appliance's JetStream domain.
	Site string `json:"site"`
	// Server is the appliance's NATS server name.
	Server    string    `json:"server"`
	Version   string    `json:"version"`
	SentAt    time.Time `json:"sentAt"`
	StartedAt time.Time `json:"startedAt"`
	// LinkUpSince is when the appliance's leafnode link last came up.
	LinkUpSince *time.Time `json:"linkUpSince"`
	// State and Summary are the appliance's verdict.
	State   health.State `json:"state"`
	Summary string       `json:"summary"`
	// SourcedSequence is the last sequence of the cloud's VISITS stream
	// that the site's stream has sourced, or 0 for none or unknown.
	SourcedSequence uint64 `json:"sourcedSequence"`
	// PendingCommit counts visits in the site's stream not yet committed.
	PendingCommit uint64 `json:"pendingCommit"`
	// Committed counts visits committed since the appliance started.
	Committed int64 `json:"committed"`
	// DeadLetters counts visits waiting in the site's dead-letter stream.
	DeadLetters  uint64     `json:"deadLetters"`
	LastCommitAt *time.Time `json:"lastCommitAt"`
	// DatabaseReachable is false while the appliance's database does not
	// respond.
	DatabaseReachable bool `json:"databaseReachable"`
}

// Reply is the gateway's reply to a heartbeat.
type Reply struct {
	// GatewayTime is the gateway's clock when it replied. The appliance
	// compares it with its own to detect clock skew.
	GatewayTime time.Time `json:"gatewayTime"`
	// RunwayDays is the cloud buffer runway, or nil when no visit arrived in
	// the last 24 hours.
	RunwayDays *float64 `json:"runwayDays"`
	// NotSourced counts the cloud visits that the site has not sourced
	// yet, and OldestNotSourcedAt is the accept time of the oldest of
	// them. Both are from the gateway's last status refresh, or nil when
	// not known. The appliance falls back to them when it cannot read the
	// cloud stream itself.
	NotSourced         *uint64    `json:"notSourced"`
	OldestNotSourcedAt *time.Time `json:"oldestNotSourcedAt"`
}
