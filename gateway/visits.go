package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// headerAcceptedAt carries the gateway's accept time, so that a retry
// receives the time of the first accept.
const headerAcceptedAt = "Visitrelay-Accepted-At"

type acceptResponse struct {
	VisitID    string    `json:"visitId"`
	Status     string    `json:"status"`
	AcceptedAt time.Time `json:"acceptedAt"`
}

// forbiddenUserError is a visit posted for another salesman.
type forbiddenUserError struct {
	errs visit.Errors
}

func (e forbiddenUserError) Error() string { return e.errs.Error() }

func (g *Gateway) postVisit(c *fiber.Ctx) error {
	if !isJSON(c) {
		return fmt.Errorf("content type %q: %w", c.Get(fiber.HeaderContentType), ErrNotJSON)
	}
	user := currentUser(c)

	v, err := visit.Decode(c.Body())
	if err != nil {
		return err
	}
	if v.UserID != user.ID {
		return forbiddenUserError{visit.Errors{{Field: "userId",
			Message: fmt.Sprintf("must be the logged-in user's id %q", user.ID)}}}
	}
	if err := visit.Validate(v, user.ID, g.dir, time.Now()); err != nil {
		return err
	}
	if v.VisitID == "" {
		v.VisitID = visit.DeriveID(v, c.Get("Idempotency-Key"))
	}

	resp, created, err := g.accept(c.UserContext(), v)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(resp)
}

// accept stores a valid visit in the cloud stream and reports whether it is
// new. It returns only after the stream has fsynced and acknowledged the
// visit, or found it already stored.
func (g *Gateway) accept(ctx context.Context, v visit.Visit) (acceptResponse, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Visits.PublishTimeout)
	defer cancel()
	hash := v.Hash()

	// The stream's duplicate window drops ids after an hour, so an older
	// retry is matched by looking the visit up by its subject first. The
	// lookup names the user's own subject: the stream finds a literal
	// subject in its index at once, while a wildcard over all users got
	// slower as the stream grew. A visitId reused by another salesman after
	// the window therefore passes here, and the appliance sends it to dead
	// letters, because its content hash differs from the stored row's.
	existing, err := g.visits.GetLastMsgForSubject(ctx, streams.VisitSubject(v.UserID, v.VisitID))
	switch {
	case err == nil:
		resp, err := compareStored(existing, v.VisitID, hash)
		return resp, false, err
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return acceptResponse{}, false, fmt.Errorf("look up visit %s: %w: %w", v.VisitID, ErrUnavailable, err)
	}

	now := time.Now().UTC()
	msg, err := newVisitMsg(v, hash, now)
	if err != nil {
		return acceptResponse{}, false, err
	}
	ack, err := g.js.PublishMsg(ctx, msg)
	if err != nil {
		return acceptResponse{}, false, fmt.Errorf("publish visit %s: %w: %w", v.VisitID, ErrUnavailable, err)
	}
	if ack.Duplicate {
		// A concurrent post of the same visitId won the race.
		stored, err := g.visits.GetMsg(ctx, ack.Sequence)
		if err != nil {
			return acceptResponse{}, false, fmt.Errorf("load duplicate visit %s at sequence %d: %w: %w", v.VisitID, ack.Sequence, ErrUnavailable, err)
		}
		resp, err := compareStored(stored, v.VisitID, hash)
		return resp, false, err
	}
	g.logger.Debug("visit accepted", "visit_id", v.VisitID, "user_id", v.UserID, "sequence", ack.Sequence)
	return acceptResponse{VisitID: v.VisitID, Status: "accepted", AcceptedAt: now}, true, nil
}

func newVisitMsg(v visit.Visit, hash string, now time.Time) (*nats.Msg, error) {
	data, err := json.Marshal(visit.Envelope{Visit: v, AcceptedAt: now, ContentHash: hash})
	if err != nil {
		return nil, fmt.Errorf("encode visit %s: %w", v.VisitID, err)
	}
	msg := nats.NewMsg(streams.VisitSubject(v.UserID, v.VisitID))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, v.VisitID)
	msg.Header.Set(jetstream.ExpectedStreamHeader, streams.Visits)
	msg.Header.Set(streams.HeaderContentHash, hash)
	msg.Header.Set(headerAcceptedAt, now.Format(time.RFC3339Nano))
	return msg, nil
}

// compareStored returns the response to a retry: the same content is the same visit, other
// content under the same visitId is a conflict.
func compareStored(stored *jetstream.RawStreamMsg, visitID, hash string) (acceptResponse, error) {
	if stored.Header.Get(streams.HeaderContentHash) != hash {
		return acceptResponse{}, fmt.Errorf("visit %s: %w", visitID, ErrConflict)
	}
	acceptedAt, err := time.Parse(time.RFC3339Nano, stored.Header.Get(headerAcceptedAt))
	if err != nil {
		acceptedAt = stored.Time.UTC()
	}
	return acceptResponse{VisitID: visitID, Status: "accepted", AcceptedAt: acceptedAt}, nil
}
