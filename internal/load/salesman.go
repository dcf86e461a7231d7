package load

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// tokenRenewMargin is how long before its expiry a token is renewed, so a
// long run at a low rate never posts with an expired token.
const tokenRenewMargin = time.Minute

// runner holds what all salesmen of one run share.
type runner struct {
	options Options
	gateway *gateway
	pacer   *pacer
}

func newRunner(o Options) *runner {
	client := o.HTTPClient
	if client == nil {
		client = newHTTPClient(o.Salesmen, o.Insecure)
	}
	// validate has parsed the URL already.
	base, _ := url.Parse(o.GatewayURL)
	return &runner{options: o, gateway: newGateway(base, client, o.RequestTimeout), pacer: newPacer(o.Rate)}
}

// session is one salesman's state: the login and its own random source.
// The random source and the retrier belong to the poster goroutine. The
// poller reads only the token, which mu guards.
type session struct {
	runner  *runner
	account account
	random  *rand.Rand
	retrier *retrier
	logger  *slog.Logger

	mu        sync.Mutex
	userID    string
	token     string
	expiresAt time.Time
}

func (r *runner) newSession(index int, a account) *session {
	// Each salesman gets its own stream from the run's seed, so a run
	// with the same seed generates the same visits whatever the timing.
	random := rand.New(rand.NewPCG(uint64(r.options.Seed), uint64(index)))
	logger := r.options.Logger.With("salesman", a.Username)
	return &session{
		runner:  r,
		account: a,
		random:  random,
		logger:  logger,
		retrier: &retrier{
			backoff:     backoff{base: r.options.RetryBase, max: r.options.RetryMax},
			maxAttempts: r.options.MaxAttempts,
			random:      random,
			logger:      logger,
		},
	}
}

// runSalesman logs one salesman in and posts a day of visits. When
// WaitStored is set, a poller runs alongside and then waits until the
// visits are stored. An error means the salesman could not start or could
// not renew its login. The result counts what happened until then.
func (r *runner) runSalesman(ctx context.Context, index int, a account) (salesmanResult, error) {
	s := r.newSession(index, a)
	var result salesmanResult
	if err := s.login(ctx); err != nil {
		return result, err
	}
	directory, err := s.fetchLookups(ctx)
	if err != nil {
		return result, err
	}
	visits, err := generateVisits(s.random, s.userID, directory, r.options.Visits, time.Now())
	if err != nil {
		return result, err
	}

	var sent ledger
	var last []listedVisit
	var poller sync.WaitGroup
	postingDone := make(chan struct{})
	if r.options.WaitStored > 0 {
		poller.Go(func() { last = s.pollStored(ctx, &sent, postingDone) })
	}
	err = s.postAll(ctx, visits, &sent, &result)
	close(postingDone)
	poller.Wait()

	if r.options.WaitStored > 0 {
		tallyStored(sent.visits, last, &result)
	}
	return result, err
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	User      struct {
		ID string `json:"id"`
	} `json:"user"`
}

// login gets a token, retrying while the gateway is unavailable.
func (s *session) login(ctx context.Context) error {
	body, err := json.Marshal(loginRequest{Username: s.account.Username, Password: s.account.Password})
	if err != nil {
		return fmt.Errorf("log in %q: %w", s.account.Username, err)
	}
	call := apiCall{method: http.MethodPost, path: loginPath, body: body}
	resp, err := s.send(ctx, call, http.StatusOK)
	if err != nil {
		return fmt.Errorf("log in %q: %w", s.account.Username, err)
	}

	var answer loginResponse
	if err := json.Unmarshal(resp.body, &answer); err != nil || answer.Token == "" || answer.User.ID == "" {
		return fmt.Errorf("log in %q: response lacks token or user id: %s", s.account.Username, newStatusError(resp).body)
	}
	if answer.User.ID != s.account.ID {
		s.logger.Warn("user id differs from the users file", "file_id", s.account.ID, "gateway_id", answer.User.ID)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.userID, s.token, s.expiresAt = answer.User.ID, answer.Token, answer.ExpiresAt
	s.logger.Debug("logged in", "user_id", s.userID, "expires_at", s.expiresAt)
	return nil
}

func (s *session) bearerToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// renewLogin logs in again when the token expires soon.
func (s *session) renewLogin(ctx context.Context) error {
	s.mu.Lock()
	expiresAt := s.expiresAt
	s.mu.Unlock()
	if expiresAt.IsZero() || time.Until(expiresAt) > tokenRenewMargin {
		return nil
	}
	return s.login(ctx)
}

func (s *session) fetchLookups(ctx context.Context) (lookups, error) {
	call := apiCall{method: http.MethodGet, path: lookupsPath, token: s.bearerToken()}
	resp, err := s.send(ctx, call, http.StatusOK)
	if err != nil {
		return lookups{}, fmt.Errorf("fetch lookups for %q: %w", s.account.Username, err)
	}
	var directory lookups
	if err := json.Unmarshal(resp.body, &directory); err != nil {
		return lookups{}, fmt.Errorf("decode lookups for %q: %w", s.account.Username, err)
	}
	return directory, nil
}

// send makes call with retries and returns its response when the status is
// one of expected, else a *statusError.
func (s *session) send(ctx context.Context, call apiCall, expected ...int) (response, error) {
	resp, _, err := s.retrier.do(ctx, func(ctx context.Context) (response, error) {
		return s.runner.gateway.do(ctx, call)
	})
	if err != nil {
		return resp, err
	}
	for _, status := range expected {
		if resp.status == status {
			return resp, nil
		}
	}
	return resp, newStatusError(resp)
}
