package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Limits of GET /api/v1/visits: it returns at most listPageSize visits, the
// oldest first, so a longer list is read in pages. maxListPages bounds one
// listing at 100,000 visits.
const (
	listPageSize = 1000
	maxListPages = 100
)

// listedVisit is one entry of GET /api/v1/visits.
type listedVisit struct {
	VisitID    string    `json:"visitId"`
	ClientID   string    `json:"clientId"`
	DateTime   time.Time `json:"dateTime"`
	AcceptedAt time.Time `json:"acceptedAt"`
	Status     string    `json:"status"`
	StoredAt   time.Time `json:"storedAt"`
}

// pollStored polls the salesman's visit list while it posts, so that
// post-to-stored latency is measured during the run. Once postingDone is
// closed it polls at once and then for up to WaitStored more, until every
// accepted visit reads stored. It returns the last list read, nil if none.
func (s *session) pollStored(ctx context.Context, sent *ledger, postingDone <-chan struct{}) []listedVisit {
	o := s.runner.options
	ticker := time.NewTicker(o.PollInterval)
	defer ticker.Stop()

	var deadline <-chan time.Time
	var last []listedVisit
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return last
		case <-deadline:
			if lastErr != nil {
				s.logger.Warn("visit list not read at the end of the wait", "error", lastErr)
			}
			return last
		case <-postingDone:
			postingDone = nil
			deadline = time.After(o.WaitStored)
		case <-ticker.C:
		}

		since, ok := sent.listSince()
		if !ok && postingDone == nil {
			return last
		}
		if !ok {
			continue
		}
		entries, err := s.listVisits(ctx, since)
		lastErr = err
		if err != nil {
			s.logger.Debug("visit list not read", "error", err)
			continue
		}
		last = entries
		sent.markStored(entries)
		if postingDone == nil && sent.allStored() {
			return last
		}
	}
}

// tallyStored counts stored visits and duplicates once the poster and the
// poller have both stopped, so it reads sent without the lock.
func tallyStored(sent []*tracked, last []listedVisit, result *salesmanResult) {
	for _, t := range sent {
		if t.stored {
			result.stored++
			result.storedLatencies = append(result.storedLatencies, t.storedLatency)
		}
	}
	result.duplicates = countDuplicates(sent, last)
}

// listVisits reads the salesman's visits accepted since the given time,
// page by page. After a full page the next one starts at the last
// acceptance time read. Entries at exactly that time were already read, so
// the next page skips as many of them as the previous page ended with.
func (s *session) listVisits(ctx context.Context, since time.Time) ([]listedVisit, error) {
	var all []listedVisit
	skip := 0
	for range maxListPages {
		page, err := s.listPage(ctx, since)
		if err != nil {
			return nil, err
		}
		rest := page
		for skip > 0 && len(rest) > 0 && rest[0].AcceptedAt.Equal(since) {
			rest, skip = rest[1:], skip-1
		}
		all = append(all, rest...)
		if len(page) < listPageSize {
			return all, nil
		}

		next := page[len(page)-1].AcceptedAt
		if !next.After(since) {
			return nil, fmt.Errorf("list visits since %s: a full page did not advance the acceptance time", since.Format(time.RFC3339Nano))
		}
		since, skip = next, 0
		for i := len(page) - 1; i >= 0 && page[i].AcceptedAt.Equal(next); i-- {
			skip++
		}
	}
	return nil, fmt.Errorf("list visits: more than %d pages", maxListPages)
}

func (s *session) listPage(ctx context.Context, since time.Time) ([]listedVisit, error) {
	query := url.Values{"since": {since.UTC().Format(time.RFC3339Nano)}}
	call := apiCall{method: http.MethodGet, path: visitsPath, query: query, token: s.bearerToken()}
	resp, err := s.runner.gateway.do(ctx, call)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("list visits: %w", newStatusError(resp))
	}

	var answer struct {
		Visits []listedVisit `json:"visits"`
	}
	if err := json.Unmarshal(resp.body, &answer); err != nil {
		return nil, fmt.Errorf("decode visit list: %w", err)
	}
	if answer.Visits == nil {
		return nil, errors.New("decode visit list: no visits array")
	}
	return answer.Visits, nil
}
