package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// ErrDeadLetterNotFound means no dead letter has the given visit id.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// DeadLetter is a visit the database rejected for its content.
type DeadLetter struct {
	Sequence uint64
	VisitID  string
	Reason   string
	Attempts int
	Time     time.Time
	Envelope visit.Envelope
	Raw      []byte
}

// DeadLetters reads and resolves the dead-letter stream of a running
// appliance.
type DeadLetters struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	pool   *pgxpool.Pool
}

// NewDeadLetters opens the dead-letter stream through nc.
func NewDeadLetters(ctx context.Context, nc *nats.Conn, pool *pgxpool.Pool) (*DeadLetters, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open JetStream context: %w", err)
	}
	stream, err := js.Stream(ctx, streams.DeadLetters)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", streams.DeadLetters, err)
	}
	return &DeadLetters{js: js, stream: stream, pool: pool}, nil
}

// List returns every dead letter, oldest first.
func (d *DeadLetters) List(ctx context.Context) ([]DeadLetter, error) {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streams.DeadLetters, err)
	}
	var list []DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := d.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted after a replay or discard
		}
		if err != nil {
			return nil, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		list = append(list, parseDeadLetter(msg))
	}
	return list, nil
}

// Get returns the dead letter of one visit.
func (d *DeadLetters) Get(ctx context.Context, visitID string) (DeadLetter, error) {
	msg, err := d.stream.GetLastMsgForSubject(ctx, streams.DeadLetterSubject(visitID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("visit %s: %w; list them with deadletters list", visitID, ErrDeadLetterNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read dead letter of %s: %w", visitID, err)
	}
	return parseDeadLetter(msg), nil
}

func parseDeadLetter(msg *jetstream.RawStreamMsg) DeadLetter {
	attempts, _ := strconv.Atoi(msg.Header.Get(streams.HeaderAttempts))
	dl := DeadLetter{
		Sequence: msg.Sequence, Reason: msg.Header.Get(streams.HeaderReason),
		Attempts: attempts, Time: msg.Time, Raw: msg.Data,
		VisitID: strings.TrimPrefix(msg.Subject, "deadletters."),
	}
	_ = json.Unmarshal(msg.Data, &dl.Envelope)
	return dl
}

// Replay commits a dead letter's visit now, through the same
// insert-if-absent as the committer, publishes its receipt, and only then
// removes the dead letter. If the database still rejects it, the dead
// letter stays and the error gives the cause.
func (d *DeadLetters) Replay(ctx context.Context, visitID string) error {
	dl, err := d.Get(ctx, visitID)
	if err != nil {
		return err
	}
	if dl.Envelope.VisitID == "" || dl.Envelope.ContentHash == "" {
		return fmt.Errorf("replay visit %s: the dead letter contains no valid visit; discard it with -reason", visitID)
	}
	item := &pending{env: dl.Envelope}
	if err := commitVisits(ctx, d.pool, []*pending{item}); err != nil {
		return fmt.Errorf("replay visit %s: %w; fix the cause and replay again", visitID, err)
	}

	data, _ := json.Marshal(streams.Receipt{VisitID: item.env.VisitID, UserID: item.env.UserID, CommittedAt: item.committedAt.UTC()})
	msg := nats.NewMsg(streams.ReceiptSubject(item.env.UserID, item.env.VisitID))
	msg.Data = data
	if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(item.env.VisitID)); err != nil {
		return fmt.Errorf("publish receipt of replayed visit %s: %w; the visit is stored, replay again to send the receipt", visitID, err)
	}
	if err := d.stream.DeleteMsg(ctx, dl.Sequence); err != nil {
		return fmt.Errorf("remove dead letter of replayed visit %s: %w; the visit is stored", visitID, err)
	}
	return nil
}

// Discard records a dead letter in the discarded_visits table with the
// admin's reason, and then removes it from the stream.
func (d *DeadLetters) Discard(ctx context.Context, visitID, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("discard: missing -reason; the record must state why the visit was dropped")
	}
	dl, err := d.Get(ctx, visitID)
	if err != nil {
		return err
	}
	payload := dl.Raw
	if !json.Valid(payload) {
		payload, _ = json.Marshal(map[string]string{"raw": string(dl.Raw)})
	}
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
INSERT INTO discarded_visits (visit_id, payload, dead_letter_reason, reason) VALUES ($1, $2, $3, $4)`,
			dl.Envelope.VisitID, payload, dl.Reason, reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("record discard of visit %s: %w", visitID, err)
	}
	if err := d.stream.DeleteMsg(ctx, dl.Sequence); err != nil {
		return fmt.Errorf("remove discarded dead letter %s: %w", visitID, err)
	}
	return nil
}

// writeDeadLetters prints a table of dead letters.
func writeDeadLetters(w io.Writer, list []DeadLetter) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VISIT ID\tUSER\tCLINIC\tSINCE\tATTEMPTS\tREASON")
	for _, dl := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", dl.VisitID, dl.Envelope.UserID, dl.Envelope.ClientID,
			dl.Time.UTC().Format(time.RFC3339), dl.Attempts, dl.Reason)
	}
	return tw.Flush()
}
