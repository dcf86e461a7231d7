// Package health judges the state of a visitrelay process for its status
// page, /status.json and /readyz: a verdict with named warnings, the disk
// under the JetStream store, and the runway of the cloud buffer.
package health

import (
	"strings"
	"time"
)

// State is the one-word verdict on a status page.
type State string

// The verdicts, from best to worst.
const (
	// Flowing means every visit moves on without delay.
	Flowing State = "flowing"
	// Degraded means visits are kept safe but some wait, or will soon.
	Degraded State = "degraded"
	// Stopped means the process cannot take or store visits.
	Stopped State = "stopped"
)

// Codes of the warnings. They are stable, so scripts reading /status.json
// can match on them.
const (
	CodeLeafnodeDown        = "leafnode_down"
	CodeDatabaseUnreachable = "database_unreachable"
	CodeDatabaseFailing     = "database_failing"
	CodeSchemaOutdated      = "schema_outdated"
	CodeDeadLetters         = "dead_letters"
	CodeStoreFull           = "store_full"
	CodeStoreNotWritable    = "store_not_writable"
	CodeJetStreamDown       = "jetstream_down"
	CodeClockSkew           = "clock_skew"
	CodeRunwayLow           = "runway_low"
	CodeVisitsDelayed       = "visits_delayed"
	CodeStreamFull          = "stream_full"
	CodeNoAppliance         = "no_appliance"
	CodeHeartbeatLate       = "heartbeat_late"
	CodeApplianceDegraded   = "appliance_degraded"
	CodeReplicasLost        = "replicas_lost"
)

// Thresholds of the warnings that both sides raise.
const (
	// StoreFullPercent is the disk or stream fill above which the store
	// warns: at 100 % new visits are rejected.
	StoreFullPercent = 80.0
	// RunwayLowDays is the cloud buffer runway below which the status
	// pages warn, so that someone can act before the phones get 503.
	RunwayLowDays = 3.0
	// MaxClockSkew is the clock difference between appliance and gateway
	// above which the pages warn: ages and "since" times become wrong.
	MaxClockSkew = time.Minute
	// MaxPendingAge is how old the oldest visit not yet in the database
	// may be before the page warns. A flowing pipeline stores a visit
	// within seconds, so a larger age means a hop is stuck.
	MaxPendingAge = 10 * time.Minute
)

// Warning is one named problem on a status page.
type Warning struct {
	// Code is one of the Code constants.
	Code string `json:"code"`
	// Message is the problem in a few words.
	Message string `json:"message"`
	// Since is when the problem started, when that is known.
	Since *time.Time `json:"since"`
	// Stops marks a problem that stops the flow of visits rather than
	// delaying it.
	Stops bool `json:"stops"`
}

// Verdict is the one-line judgement at the top of a status page.
type Verdict struct {
	State State `json:"state"`
	// Summary is the line shown: "all flowing", or the state and why.
	Summary  string    `json:"summary"`
	Warnings []Warning `json:"warnings"`
}

// Judge returns the verdict for a list of warnings: stopped if one of
// them stops the flow, degraded if there are any, all flowing otherwise.
// The summary names the stopping warnings first.
func Judge(warnings []Warning) Verdict {
	if len(warnings) == 0 {
		return Verdict{State: Flowing, Summary: "all flowing", Warnings: []Warning{}}
	}
	state := Degraded
	var stops, others []string
	for _, w := range warnings {
		text := w.Message
		if w.Since != nil {
			text += " since " + Clock(*w.Since)
		}
		if w.Stops {
			state = Stopped
			stops = append(stops, text)
			continue
		}
		others = append(others, text)
	}
	return Verdict{
		State:    state,
		Summary:  string(state) + ": " + strings.Join(append(stops, others...), "; "),
		Warnings: warnings,
	}
}

// Clock formats t in the local time zone: the time of day for today, and
// the date with it otherwise.
func Clock(t time.Time) string {
	t = t.Local()
	now := time.Now()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

// At returns a pointer to t, or nil for the zero time, for the optional
// time fields of /status.json.
func At(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
