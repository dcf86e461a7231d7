package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// maxListed bounds one listing, so a phone polling an old since cannot make
// the gateway read its whole stream.
const maxListed = 1000

type listedVisit struct {
	VisitID    string     `json:"visitId"`
	ClientID   string     `json:"clientId"`
	DateTime   time.Time  `json:"dateTime"`
	AcceptedAt time.Time  `json:"acceptedAt"`
	Status     string     `json:"status"`
	StoredAt   *time.Time `json:"storedAt,omitempty"`
}

type listResponse struct {
	Visits []listedVisit `json:"visits"`
}

func (g *Gateway) listVisits(c *fiber.Ctx) error {
	since := time.Now().Add(-7 * 24 * time.Hour)
	if s := c.Query("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return visit.Errors{{Field: "since", Message: fmt.Sprintf("must be an RFC 3339 time, got %q", s)}}
		}
		since = t
	}
	user := currentUser(c)
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()

	var visits []listedVisit
	err := g.scan(ctx, streams.Visits, streams.UserVisitsSubject(user.ID), since, func(data []byte) {
		var env visit.Envelope
		if json.Unmarshal(data, &env) != nil {
			return
		}
		visits = append(visits, listedVisit{VisitID: env.VisitID, ClientID: env.ClientID,
			DateTime: env.DateTime, AcceptedAt: env.AcceptedAt, Status: "accepted"})
	})
	if err != nil {
		return fmt.Errorf("list visits of user %q: %w: %w", user.ID, ErrUnavailable, err)
	}

	stored := map[string]time.Time{}
	err = g.scan(ctx, streams.Receipts, streams.UserReceiptsSubject(user.ID), since, func(data []byte) {
		var r streams.Receipt
		if json.Unmarshal(data, &r) == nil {
			stored[r.VisitID] = r.CommittedAt
		}
	})
	if err != nil {
		return fmt.Errorf("list receipts of user %q: %w: %w", user.ID, ErrUnavailable, err)
	}

	for i := range visits {
		if at, ok := stored[visits[i].VisitID]; ok {
			visits[i].Status = "stored"
			visits[i].StoredAt = &at
		}
	}
	if visits == nil {
		visits = []listedVisit{}
	}
	return c.JSON(listResponse{Visits: visits})
}

// scan reads the messages of one subject filter stored since a time, up to
// maxListed, through an ordered consumer that is deleted afterwards.
func (g *Gateway) scan(ctx context.Context, stream, filter string, since time.Time, fn func([]byte)) error {
	cons, err := g.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// No site has connected yet, so no receipt exists.
		return nil
	}
	if err != nil {
		return fmt.Errorf("create ordered consumer on %s: %w", stream, err)
	}
	info := cons.CachedInfo()
	if info == nil || info.NumPending == 0 {
		return nil
	}

	remaining := min(int(info.NumPending), maxListed)
	for remaining > 0 {
		batch, err := cons.Fetch(min(remaining, 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("fetch from %s: %w", stream, err)
		}
		n := 0
		for msg := range batch.Messages() {
			fn(msg.Data())
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("fetch from %s: %w", stream, err)
		}
		if n == 0 {
			break
		}
		remaining -= n
	}
	return nil
}
