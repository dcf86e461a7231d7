package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// ErrInvalidVisitID means a trace was asked for a value that is not a UUID.
var ErrInvalidVisitID = errors.New("visit id must be a UUID such as 0b6f2f5e-8d52-4f4e-9a61-2f1c3f2d9c10")

// Stages of a trace, from the gateway to the database.
const (
	StageNotFound   = "not_found"
	StageCloud      = "cloud"
	StageOnPrem     = "onprem"
	StageCommitted  = "committed"
	StageDeadLetter = "dead_letter"
	StageDiscarded  = "discarded"
)

// States of a trace step.
const (
	StepDone    = "done"
	StepNo      = "no"
	StepUnknown = "unknown"
)

// Trace is the current position of one visit, step by step.
type Trace struct {
	VisitID string `json:"visitId"`
	// Stage is the furthest point the visit reached: one of the Stage
	// constants.
	Stage   string      `json:"stage"`
	Summary string      `json:"summary"`
	Steps   []TraceStep `json:"steps"`
}

// TraceStep is one place the visit passes through.
type TraceStep struct {
	// Name is accepted, sourced, committed, receipt, dead_letter or
	// discarded.
	Name  string `json:"name"`
	Title string `json:"title"`
	// State is done, no or unknown. Unknown means the place did not
	// respond, such as the cloud while the leafnode link is down.
	State  string     `json:"state"`
	At     *time.Time `json:"at"`
	Detail string     `json:"detail"`
}

// tracer looks a visit up in every stream and table it passes through.
type tracer struct {
	site  jetstream.JetStream // the appliance's own domain
	cloud jetstream.JetStream // the cloud domain, through the leafnode link
	pool  *pgxpool.Pool
}

// trace looks up the visit with id in every place it passes through. A
// place that does not respond makes an unknown step, not an error.
func (t tracer) trace(ctx context.Context, id string) (Trace, error) {
	parsed, err := uuid.Parse(strings.TrimSpace(id))
	if err != nil {
		return Trace{}, fmt.Errorf("trace %q: %w", id, ErrInvalidVisitID)
	}
	// The gateway stores ids in their canonical lowercase form.
	id = parsed.String()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	accepted := t.acceptedStep(ctx, id)
	sourced, sourcedSeq := t.sourcedStep(ctx, id)
	committed := t.committedStep(ctx, id)
	receipt := t.receiptStep(ctx, id)
	deadLetter := t.deadLetterStep(ctx, id)
	discarded := t.discardedStep(ctx, id)
	if sourced.State == StepDone && committed.State != StepDone {
		sourced.Detail += "; " + t.committerPosition(ctx, sourcedSeq)
	}

	tr := Trace{VisitID: id, Steps: []TraceStep{accepted, sourced, committed, receipt, deadLetter, discarded}}
	tr.Stage, tr.Summary = judgeTrace(accepted, sourced, committed, receipt, deadLetter, discarded)
	return tr, nil
}

// judgeTrace names the furthest stage the steps show.
func judgeTrace(accepted, sourced, committed, receipt, deadLetter, discarded TraceStep) (string, string) {
	switch {
	case committed.State == StepDone:
		summary := "committed to the database at " + stamp(committed.At)
		if receipt.State == StepDone {
			summary += "; receipt sent"
		}
		return StageCommitted, summary
	case deadLetter.State == StepDone:
		return StageDeadLetter, "in dead letters since " + stamp(deadLetter.At) + ": " + deadLetter.Detail
	case discarded.State == StepDone:
		return StageDiscarded, "discarded from dead letters at " + stamp(discarded.At) + ": " + discarded.Detail
	case sourced.State == StepDone:
		return StageOnPrem, "on-prem, not yet in the database: " + sourced.Detail
	case accepted.State == StepDone:
		return StageCloud, "accepted in the cloud, not yet on-prem"
	}
	for _, s := range []TraceStep{accepted, sourced, committed} {
		if s.State == StepUnknown {
			return StageNotFound, "not found where it could be looked up; " + s.Title + ": " + s.Detail
		}
	}
	return StageNotFound, "not found: no stream or table holds this visit id; check the id, or it was never accepted"
}

func stamp(t *time.Time) string {
	if t == nil {
		return "an unknown time"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func (t tracer) acceptedStep(ctx context.Context, id string) TraceStep {
	step := TraceStep{Name: "accepted", Title: "accepted in the cloud"}
	msg, err := lastMsg(ctx, t.cloud, streams.Visits, streams.VisitLookupSubject(id))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		step.State, step.Detail = StepNo, "not in the cloud stream: never accepted, or older than its retention"
	case err != nil:
		step.State, step.Detail = StepUnknown, "the cloud did not respond (the leaf link is down, or the hub denies the site this request): "+err.Error()
	default:
		at := acceptedAt(msg)
		step.State, step.At = StepDone, &at
		step.Detail = fmt.Sprintf("cloud stream %s, sequence %d", streams.Visits, msg.Sequence)
	}
	return step
}

func (t tracer) sourcedStep(ctx context.Context, id string) (TraceStep, uint64) {
	step := TraceStep{Name: "sourced", Title: "sourced on-prem"}
	msg, err := lastMsg(ctx, t.site, streams.Visits, streams.VisitLookupSubject(id))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		step.State, step.Detail = StepNo, "not in the on-prem stream: not sourced yet, or older than its tail"
		return step, 0
	case err != nil:
		step.State, step.Detail = StepUnknown, "the on-prem stream did not respond: "+err.Error()
		return step, 0
	}
	at := msg.Time.UTC()
	step.State, step.At = StepDone, &at
	step.Detail = fmt.Sprintf("on-prem stream %s, sequence %d", streams.Visits, msg.Sequence)
	return step, msg.Sequence
}

// committerPosition describes the committer's progress relative to a
// sequence of the site's stream.
func (t tracer) committerPosition(ctx context.Context, seq uint64) string {
	consumer, err := t.site.Consumer(ctx, streams.Visits, streams.Committer)
	if err != nil {
		return "the committer's consumer did not respond: " + err.Error()
	}
	info := consumer.CachedInfo()
	switch {
	case seq <= info.AckFloor.Stream:
		return "acked by the committer"
	case seq <= info.Delivered.Stream:
		return "delivered to the committer, not yet acked (the database may be down)"
	}
	return fmt.Sprintf("waiting for the committer, which has delivered up to sequence %d", info.Delivered.Stream)
}

func (t tracer) committedStep(ctx context.Context, id string) TraceStep {
	step := TraceStep{Name: "committed", Title: "committed to the database"}
	var at time.Time
	var transaction string
	var sequence int64
	err := t.pool.QueryRow(ctx, `SELECT committed_at, xmin::text, stream_sequence FROM visits WHERE visit_id = $1`, id).
		Scan(&at, &transaction, &sequence)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		step.State, step.Detail = StepNo, "no row in the visits table"
	case err != nil:
		step.State, step.Detail = StepUnknown, "the database did not respond: "+err.Error()
	default:
		at = at.UTC()
		step.State, step.At = StepDone, &at
		step.Detail = fmt.Sprintf("transaction %s, from on-prem stream sequence %d", transaction, sequence)
	}
	return step
}

func (t tracer) receiptStep(ctx context.Context, id string) TraceStep {
	step := TraceStep{Name: "receipt", Title: "receipt sent to the cloud"}
	msg, err := lastMsg(ctx, t.site, streams.Receipts, "receipts.*."+id)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		step.State, step.Detail = StepNo, "no receipt in the on-prem receipt stream"
		return step
	case err != nil:
		step.State, step.Detail = StepUnknown, "the on-prem receipt stream did not respond: "+err.Error()
		return step
	}
	at := msg.Time.UTC()
	step.State, step.At = StepDone, &at
	step.Detail = fmt.Sprintf("on-prem stream %s, sequence %d", streams.Receipts, msg.Sequence)

	_, err = lastMsg(ctx, t.cloud, streams.Receipts, "receipts.*."+id)
	switch {
	case err == nil:
		step.Detail += "; the cloud has it, so the salesman's phone shows the visit as stored"
	case errors.Is(err, jetstream.ErrMsgNotFound):
		step.Detail += "; not yet in the cloud"
	default:
		step.Detail += "; the cloud did not respond"
	}
	return step
}

func (t tracer) deadLetterStep(ctx context.Context, id string) TraceStep {
	step := TraceStep{Name: "dead_letter", Title: "in dead letters"}
	msg, err := lastMsg(ctx, t.site, streams.DeadLetters, streams.DeadLetterSubject(id))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		step.State, step.Detail = StepNo, "not in dead letters"
	case err != nil:
		step.State, step.Detail = StepUnknown, "the dead-letter stream did not respond: "+err.Error()
	default:
		dl := parseDeadLetter(msg)
		at := dl.Time.UTC()
		step.State, step.At = StepDone, &at
		step.Detail = fmt.Sprintf("%s (after %d attempts)", dl.Reason, dl.Attempts)
	}
	return step
}

func (t tracer) discardedStep(ctx context.Context, id string) TraceStep {
	step := TraceStep{Name: "discarded", Title: "discarded by an admin"}
	var at time.Time
	var reason, by string
	err := t.pool.QueryRow(ctx, `
SELECT discarded_at, reason, discarded_by FROM discarded_visits
WHERE visit_id = $1 ORDER BY discarded_at DESC LIMIT 1`, id).Scan(&at, &reason, &by)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		step.State, step.Detail = StepNo, "not discarded"
	case err != nil:
		step.State, step.Detail = StepUnknown, "the database did not respond: "+err.Error()
	default:
		at = at.UTC()
		step.State, step.At = StepDone, &at
		step.Detail = fmt.Sprintf("%s (by %s)", reason, by)
	}
	return step
}

// lastMsg returns the last message on subject in a stream.
func lastMsg(ctx context.Context, js jetstream.JetStream, stream, subject string) (*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, subject)
}

// acceptedAt returns the gateway's accept time stored in a visit message.
func acceptedAt(msg *jetstream.RawStreamMsg) time.Time {
	var env visit.Envelope
	if json.Unmarshal(msg.Data, &env) == nil && !env.AcceptedAt.IsZero() {
		return env.AcceptedAt.UTC()
	}
	return msg.Time.UTC()
}
