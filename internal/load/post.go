package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/visitrelay/visitrelay/internal/visit"
)

// maxLoggedProblems bounds the warnings one salesman logs about single
// visits, so a gateway that rejects everything does not flood the log. The
// report still counts every visit.
const maxLoggedProblems = 3

// acknowledgement is the body of a 201 or 200 to POST /api/v1/visits.
type acknowledgement struct {
	VisitID    string    `json:"visitId"`
	Status     string    `json:"status"`
	AcceptedAt time.Time `json:"acceptedAt"`
	status     int
}

// postAll posts the visits one after another, as one phone does, and adds
// each to sent before its first attempt. It stops early when ctx ends, and
// when the login cannot be renewed, whose error it returns.
func (s *session) postAll(ctx context.Context, visits []visit.Visit, sent *ledger, result *salesmanResult) error {
	for _, v := range visits {
		if err := s.runner.pacer.wait(ctx); err != nil {
			return nil
		}
		if err := s.renewLogin(ctx); err != nil {
			return err
		}
		body, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode visit %q: %w", v.VisitID, err)
		}

		t := &tracked{visit: v, body: body}
		sent.add(t)
		result.sent++
		start := time.Now()
		ack, attempts, err := s.post(ctx, t, false)
		result.retries += attempts - 1
		if err != nil {
			s.countFailedPost(ctx, t, err, result)
			continue
		}
		ackedAt := sent.accept(t, ack.AcceptedAt)
		result.accepted++
		result.postLatencies = append(result.postLatencies, ackedAt.Sub(start))

		if s.random.Float64() < s.runner.options.DuplicateRate {
			s.resend(ctx, t, result)
		}
	}
	return nil
}

// post sends t's body until the gateway acknowledges or rejects it. Every
// attempt carries the same body, so all retries of a request carry one
// visitId. It returns the number of attempts made.
func (s *session) post(ctx context.Context, t *tracked, fresh bool) (acknowledgement, int, error) {
	call := apiCall{method: http.MethodPost, path: visitsPath, token: s.bearerToken(), body: t.body, fresh: fresh}
	resp, attempts, err := s.retrier.do(ctx, func(ctx context.Context) (response, error) {
		return s.runner.gateway.do(ctx, call)
	})
	if err != nil {
		return acknowledgement{}, attempts, fmt.Errorf("post visit %q: %w", t.visit.VisitID, err)
	}
	if resp.status != http.StatusCreated && resp.status != http.StatusOK {
		return acknowledgement{}, attempts, fmt.Errorf("post visit %q: %w", t.visit.VisitID, newStatusError(resp))
	}

	var ack acknowledgement
	if err := json.Unmarshal(resp.body, &ack); err != nil {
		s.logger.Warn("acknowledgement is not valid JSON", "visit_id", t.visit.VisitID, "error", err)
	}
	if ack.VisitID != "" && ack.VisitID != t.visit.VisitID {
		s.logger.Warn("acknowledgement names another visit", "visit_id", t.visit.VisitID, "acknowledged_id", ack.VisitID)
	}
	ack.status = resp.status
	return ack, attempts, nil
}

// countFailedPost counts a visit that was not accepted: rejected for good
// with a 4xx, or unacknowledged when retries ran out or ctx ended.
func (s *session) countFailedPost(ctx context.Context, t *tracked, err error, result *salesmanResult) {
	if ctx.Err() != nil {
		return
	}
	var rejection *statusError
	if errors.As(err, &rejection) && rejection.status < 500 && rejection.status != http.StatusTooManyRequests {
		result.rejected++
		if result.rejected <= maxLoggedProblems {
			s.logger.Warn("visit rejected", "visit_id", t.visit.VisitID, "status", rejection.status, "error", rejection.body)
		}
		return
	}
	result.unacknowledged++
	if result.unacknowledged <= maxLoggedProblems {
		s.logger.Warn("visit not acknowledged", "visit_id", t.visit.VisitID, "error", err)
	}
}

// resend posts an accepted visit again over a new connection, as a phone
// does when the acknowledgement was lost on the way. The gateway is
// expected to respond 200 and keep one visit.
func (s *session) resend(ctx context.Context, t *tracked, result *salesmanResult) {
	result.resent++
	ack, attempts, err := s.post(ctx, t, true)
	result.retries += attempts - 1
	if err != nil {
		if ctx.Err() == nil {
			result.resendsFailed++
			s.logger.Warn("resent visit not acknowledged", "visit_id", t.visit.VisitID, "error", err)
		}
		return
	}
	if ack.status != http.StatusOK {
		s.logger.Warn("resent visit acknowledged as new", "visit_id", t.visit.VisitID, "status", ack.status, "expected_status", http.StatusOK)
	}
}

// pacer spaces new visits evenly across all salesmen. A nil pacer does not
// wait.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the caller's turn comes or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	turn := p.next
	p.next = p.next.Add(p.interval)
	p.mu.Unlock()

	return sleep(ctx, time.Until(turn))
}
