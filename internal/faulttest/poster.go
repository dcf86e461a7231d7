package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults of a Poster.
const (
	defaultGiveUp   = 3 * time.Minute
	defaultMaxPause = 2 * time.Second
	firstRetryPause = 100 * time.Millisecond
	requestTimeout  = 15 * time.Second
	loginTimeout    = time.Minute
	visitsPath      = "/api/v1/visits"
	loginPath       = "/api/v1/login"
)

// Ack is the gateway's acknowledgement of a visit: 201 or 200 with the
// time the gateway first accepted it.
type Ack struct {
	Status     int
	AcceptedAt time.Time
}

// Ledger records what posters sent and how the gateway responded. It is
// safe for concurrent use.
type Ledger struct {
	mu       sync.Mutex
	visits   map[string]Visit  // every visit posted at least once
	acks     map[string]Ack    // the first acknowledgement of each visit
	created  map[string]int    // 201 responses per visit
	rejected map[string]string // visits rejected with a 4xx other than 429
	attempts int               // requests sent
	retried  int               // requests that failed with a network error, 5xx or 429
	problems []string          // contradicting responses and visits given up on
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{
		visits:   map[string]Visit{},
		acks:     map[string]Ack{},
		created:  map[string]int{},
		rejected: map[string]string{},
	}
}

func (l *Ledger) sent(v Visit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.visits[v.VisitID] = v
	l.attempts++
}

func (l *Ledger) failed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retried++
}

// acknowledge records a 201 or 200. Every acknowledgement of one visit must
// carry the same acceptedAt, whichever connection or gateway run sent it.
func (l *Ledger) acknowledge(id string, ack Ack) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ack.Status == http.StatusCreated {
		l.created[id]++
	}
	first, seen := l.acks[id]
	if !seen {
		l.acks[id] = ack
		return
	}
	if !first.AcceptedAt.Equal(ack.AcceptedAt) {
		l.problems = append(l.problems, fmt.Sprintf("visit %s acknowledged with acceptedAt %s and later %s (status %d)",
			id, first.AcceptedAt.Format(time.RFC3339Nano), ack.AcceptedAt.Format(time.RFC3339Nano), ack.Status))
	}
}

// unacknowledged records a visit that Post stopped retrying without an
// acknowledgement.
func (l *Ledger) unacknowledged(id string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf("visit %s not acknowledged: %v", id, err))
}

func (l *Ledger) reject(id string, status int, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rejected[id] = fmt.Sprintf("status %d: %s", status, truncate(body, 300))
}

// Posted returns the number of visits posted at least once.
func (l *Ledger) Posted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.visits)
}

// Acknowledged returns the number of visits the gateway acknowledged.
func (l *Ledger) Acknowledged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// Retried returns the number of attempts that failed with a network error, a
// 5xx or a 429.
func (l *Ledger) Retried() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.retried
}

// Created returns how many 201 responses each visit got.
func (l *Ledger) Created() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	created := make(map[string]int, len(l.created))
	for id, n := range l.created {
		created[id] = n
	}
	return created
}

// Ack returns the first acknowledgement of a visit.
func (l *Ledger) Ack(id string) (Ack, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ack, ok := l.acks[id]
	return ack, ok
}

// snapshot returns copies of the visits and acknowledgements.
func (l *Ledger) snapshot() (map[string]Visit, map[string]Ack) {
	l.mu.Lock()
	defer l.mu.Unlock()
	visits := make(map[string]Visit, len(l.visits))
	for id, v := range l.visits {
		visits[id] = v
	}
	acks := make(map[string]Ack, len(l.acks))
	for id, a := range l.acks {
		acks[id] = a
	}
	return visits, acks
}

// Problems returns the rejected visits, the visits given up on, and the
// responses that contradict an earlier one.
func (l *Ledger) Problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	problems := append([]string(nil), l.problems...)
	for id, response := range l.rejected {
		problems = append(problems, fmt.Sprintf("visit %s rejected: %s", id, response))
	}
	return problems
}

// Poster posts visits through the HTTP API as phones do: each visit keeps
// its visitId on every retry, and a network error, a 5xx or a 429 is
// retried until the gateway acknowledges the visit or GiveUp passes.
type Poster struct {
	url    string
	tokens map[string]string // by user id
	// Workers is the number of concurrent clients, each with its own
	// connection.
	Workers int
	// Fresh opens a new connection for every request.
	Fresh bool
	// Rate limits new visits to this many per second across all workers,
	// so that a burst lasts long enough for a fault to land in it. Retries
	// are not paced. 0 posts as fast as the workers can.
	Rate float64
	// GiveUp bounds how long one visit is retried. Default 3 minutes.
	GiveUp time.Duration
	// MaxPause caps the pause between two attempts. A Retry-After header
	// may request more (30 s for an unavailable stream), which a phone
	// honours, but a test shortens it so that a scenario stays short.
	// Default 2 s.
	MaxPause time.Duration
	// Ledger records every post.
	Ledger *Ledger
}

// NewPoster logs in every fixture user and returns a poster with workers
// concurrent clients.
func (s *System) NewPoster(workers int) *Poster {
	s.t.Helper()
	p := &Poster{url: s.URL, tokens: map[string]string{}, Workers: workers,
		GiveUp: defaultGiveUp, MaxPause: defaultMaxPause, Ledger: NewLedger()}
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	client := &http.Client{Timeout: requestTimeout}
	for _, u := range Users {
		token, err := login(ctx, client, s.URL, u)
		if err != nil {
			s.t.Fatal(err)
		}
		p.tokens[u.ID] = token
	}
	return p
}

// login returns a bearer token for u, retrying while the gateway is
// unreachable or responds with a 5xx.
func login(ctx context.Context, client *http.Client, baseURL string, u User) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": u.Username, "password": u.Password})
	for {
		resp, err := send(ctx, client, http.MethodPost, baseURL+loginPath, "", body)
		if err == nil && resp.status == http.StatusOK {
			var answer struct{ Token string }
			if err := json.Unmarshal(resp.body, &answer); err != nil || answer.Token == "" {
				return "", fmt.Errorf("log in %s: no token in %s", u.Username, resp.body)
			}
			return answer.Token, nil
		}
		if err == nil && resp.status < 500 {
			return "", fmt.Errorf("log in %s: status %d: %s", u.Username, resp.status, resp.body)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("log in %s: %w (last error %v)", u.Username, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Burst is a run of posts in the background.
type Burst struct {
	done chan struct{}
}

// Wait blocks until every visit of the burst is acknowledged, rejected or
// given up on, or the burst's context ends.
func (b *Burst) Wait() { <-b.done }

// Start posts visits from Workers concurrent clients in the background.
func (p *Poster) Start(ctx context.Context, visits []Visit) *Burst {
	return startBurst(ctx, visits, p.Workers, p.Rate, p.NewClient, p.Post)
}

// startBurst posts visits with post from workers concurrent clients made by
// newClient, starting at most rate posts per second (no limit when rate
// is 0), in the background.
func startBurst(ctx context.Context, visits []Visit, workers int, rate float64,
	newClient func() *http.Client, post func(context.Context, *http.Client, Visit) (Ack, error)) *Burst {
	jobs := make(chan Visit)
	b := &Burst{done: make(chan struct{})}
	var wg sync.WaitGroup
	for range workers {
		client := newClient()
		wg.Go(func() {
			for v := range jobs {
				_, _ = post(ctx, client, v)
			}
		})
	}
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	go func() {
		defer close(b.done)
		defer wg.Wait()
		defer close(jobs)
		next := time.Now()
		for _, v := range visits {
			next = next.Add(interval)
			select {
			case jobs <- v:
			case <-ctx.Done():
				return
			}
			select {
			case <-time.After(time.Until(next)):
			case <-ctx.Done():
				return
			}
		}
	}()
	return b
}

// Run is Start followed by Wait.
func (p *Poster) Run(ctx context.Context, visits []Visit) {
	p.Start(ctx, visits).Wait()
}

// NewClient returns an HTTP client with a connection of its own, or with
// no kept connection at all when Fresh is set.
func (p *Poster) NewClient() *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 1
	transport.DisableKeepAlives = p.Fresh
	return &http.Client{Transport: transport, Timeout: requestTimeout}
}

// errGaveUp means a visit was not acknowledged within GiveUp.
var errGaveUp = errors.New("gave up")

// Post posts v with client until the gateway acknowledges or rejects it,
// GiveUp passes or ctx ends, and records every response in the ledger.
func (p *Poster) Post(ctx context.Context, client *http.Client, v Visit) (Ack, error) {
	return postWithRetries(ctx, client, v, retryPolicy{ledger: p.Ledger, giveUp: p.GiveUp, maxPause: p.MaxPause},
		p.tokens[v.UserID], func(int) string { return p.url }, nil)
}

// retryPolicy is how a poster retries one visit and where it records it.
type retryPolicy struct {
	ledger   *Ledger
	giveUp   time.Duration
	maxPause time.Duration
}

// postWithRetries posts v until a gateway acknowledges or rejects it, the
// policy's giveUp passes or ctx ends, and records every response in the
// ledger. baseURL returns the gateway of each attempt, counted from 0.
// failed, when set, learns of every attempt that gets a network error, a
// 5xx or a 429 while ctx is live.
func postWithRetries(ctx context.Context, client *http.Client, v Visit, policy retryPolicy, token string,
	baseURL func(attempt int) string, failed func(attempt int, networkError bool)) (Ack, error) {
	body := v.JSON()
	deadline := time.Now().Add(policy.giveUp)
	pause := firstRetryPause
	for attempt := 0; ; attempt++ {
		policy.ledger.sent(v)
		url := baseURL(attempt)
		resp, err := send(ctx, client, http.MethodPost, url+visitsPath, token, body)
		if err == nil && (resp.status == http.StatusCreated || resp.status == http.StatusOK) {
			ack, decodeErr := decodeAck(v.VisitID, resp)
			if decodeErr != nil {
				return Ack{}, decodeErr
			}
			policy.ledger.acknowledge(v.VisitID, ack)
			return ack, nil
		}
		if err == nil && resp.status < 500 && resp.status != http.StatusTooManyRequests {
			policy.ledger.reject(v.VisitID, resp.status, resp.body)
			return Ack{}, fmt.Errorf("post visit %s to %s: status %d: %s", v.VisitID, url, resp.status, truncate(resp.body, 300))
		}

		if failed != nil && ctx.Err() == nil {
			failed(attempt, err != nil)
		}
		policy.ledger.failed()
		wait := min(max(pause, retryAfter(resp.header)), policy.maxPause)
		if time.Now().Add(wait).After(deadline) {
			err := fmt.Errorf("post visit %s: %w after %s: %v", v.VisitID, errGaveUp, policy.giveUp, describe(resp, err))
			policy.ledger.unacknowledged(v.VisitID, err)
			return Ack{}, err
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("post visit %s: %w; last attempt: %v", v.VisitID, ctx.Err(), describe(resp, err))
			policy.ledger.unacknowledged(v.VisitID, err)
			return Ack{}, err
		case <-time.After(wait):
		}
		pause = min(pause*2, policy.maxPause)
	}
}

func decodeAck(id string, resp response) (Ack, error) {
	var answer struct {
		VisitID    string    `json:"visitId"`
		Status     string    `json:"status"`
		AcceptedAt time.Time `json:"acceptedAt"`
	}
	if err := json.Unmarshal(resp.body, &answer); err != nil {
		return Ack{}, fmt.Errorf("decode acknowledgement of visit %s: %w: %s", id, err, resp.body)
	}
	if answer.VisitID != id || answer.Status != "accepted" || answer.AcceptedAt.IsZero() {
		return Ack{}, fmt.Errorf("acknowledgement of visit %s: unexpected body %s", id, resp.body)
	}
	return Ack{Status: resp.status, AcceptedAt: answer.AcceptedAt}, nil
}

// retryAfter returns the pause that a Retry-After header of whole seconds
// requests, or 0.
func retryAfter(header http.Header) time.Duration {
	seconds, err := strconv.Atoi(header.Get("Retry-After"))
	if err != nil || seconds < 0 {
		return 0
	}
	return time.Duration(seconds) * time.Second
}

func describe(resp response, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("status %d: %s", resp.status, truncate(resp.body, 300))
}

// response is an HTTP response read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send sends one JSON request and reads the whole response.
func send(ctx context.Context, client *http.Client, method, url, token string, body []byte) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// PostOnce sends v once with client, without retries, records the response
// in the ledger, and returns the status, the Retry-After header and the
// body. A 5xx counts as retried, not as rejected.
func (p *Poster) PostOnce(ctx context.Context, client *http.Client, v Visit) (status int, retryAfterHeader string, body []byte, err error) {
	p.Ledger.sent(v)
	resp, err := send(ctx, client, http.MethodPost, p.url+visitsPath, p.tokens[v.UserID], v.JSON())
	switch {
	case err != nil || resp.status >= 500 || resp.status == http.StatusTooManyRequests:
		p.Ledger.failed()
	case resp.status == http.StatusCreated || resp.status == http.StatusOK:
		ack, decodeErr := decodeAck(v.VisitID, resp)
		if decodeErr != nil {
			return resp.status, "", resp.body, decodeErr
		}
		p.Ledger.acknowledge(v.VisitID, ack)
	default:
		p.Ledger.reject(v.VisitID, resp.status, resp.body)
	}
	return resp.status, resp.header.Get("Retry-After"), resp.body, err
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
