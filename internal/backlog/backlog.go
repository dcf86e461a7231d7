// Package backlog measures the visits that wait between the cloud's VISITS
// stream and the site's: how far the site's stream has sourced, and when
// the oldest visit still waiting was accepted. The gateway and the
// appliance both read it, each through its side of the leafnode link.
package backlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/visit"
)

// AllVisits matches every visit subject in a VISITS stream.
const AllVisits = "visits.>"

// ErrNotKnown means the sourced position cannot be read: the site's
// stream has messages, but its last one is gone, such as after the tail
// expired.
var ErrNotKnown = errors.New("sourced position not known")

// SourcedSequence returns the last sequence of the cloud stream that the
// site stream holds, read from the Nats-Stream-Source header of the site
// stream's last message. It returns 0 for an empty site stream.
func SourcedSequence(ctx context.Context, site jetstream.Stream, lastSeq uint64) (uint64, error) {
	if lastSeq == 0 {
		return 0, nil
	}
	msg, err := site.GetMsg(ctx, lastSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, fmt.Errorf("read site message %d: %w", lastSeq, ErrNotKnown)
	}
	if err != nil {
		return 0, fmt.Errorf("read site message %d: %w", lastSeq, err)
	}
	seq, ok := ParseSourceHeader(msg.Header.Get("Nats-Stream-Source"))
	if !ok {
		return 0, fmt.Errorf("parse Nats-Stream-Source of site message %d: %w", lastSeq, ErrNotKnown)
	}
	return seq, nil
}

// ParseSourceHeader returns the origin sequence from a Nats-Stream-Source
// header, which nats-server v2.10 and later write as
// "<stream> <sequence> <filter> <transform> <subject>".
func ParseSourceHeader(header string) (uint64, bool) {
	fields := strings.Fields(header)
	if len(fields) < 2 {
		return 0, false
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	return seq, err == nil
}

// Waiting is the backlog after a sequence of a stream.
type Waiting struct {
	// Count is the visits stored after the sequence.
	Count uint64
	// First is the oldest of them, or nil when Count is 0.
	First *Visit
}

// Visit is one waiting visit.
type Visit struct {
	VisitID    string
	Sequence   uint64
	AcceptedAt time.Time
}

// After returns the visits of a stream stored after sequence after. The
// count assumes no gaps in the sequences, which holds for the VISITS
// streams: they only lose messages to their age limit, from the front.
func After(ctx context.Context, stream jetstream.Stream, info *jetstream.StreamInfo, after uint64) (Waiting, error) {
	first := max(after+1, info.State.FirstSeq)
	if info.State.Msgs == 0 || info.State.LastSeq < first {
		return Waiting{}, nil
	}
	w := Waiting{Count: info.State.LastSeq - first + 1}
	msg, err := stream.GetMsg(ctx, first, jetstream.WithGetMsgSubject(AllVisits))
	if err != nil {
		return w, fmt.Errorf("read oldest waiting visit at sequence %d: %w", first, err)
	}
	w.First = Describe(msg)
	return w, nil
}

// Describe returns the id and accept time of a visit message. The accept
// time is the gateway's, from the message body, not the time the message
// reached this stream. A message without one gets the latter.
func Describe(msg *jetstream.RawStreamMsg) *Visit {
	var env visit.Envelope
	_ = json.Unmarshal(msg.Data, &env)
	v := &Visit{VisitID: env.VisitID, Sequence: msg.Sequence, AcceptedAt: env.AcceptedAt.UTC()}
	if v.VisitID == "" {
		v.VisitID = msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	}
	if env.AcceptedAt.IsZero() {
		v.AcceptedAt = msg.Time.UTC()
	}
	return v
}

// CountSince returns how many messages of stream were stored at or after
// since. It reads the pending count of a short-lived consumer that starts
// at that time, and deletes the consumer again.
func CountSince(ctx context.Context, js jetstream.JetStream, stream string, since time.Time) (uint64, error) {
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Description:   "counts messages for the status page",
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &since,
		AckPolicy:     jetstream.AckNonePolicy,
		MemoryStorage: true,
		// The consumer goes away by itself should the delete below fail.
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return 0, fmt.Errorf("create counting consumer on %s: %w", stream, err)
	}
	info := cons.CachedInfo()
	if err := js.DeleteConsumer(ctx, stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return info.NumPending, fmt.Errorf("delete counting consumer on %s: %w", stream, err)
	}
	return info.NumPending, nil
}
