package load

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps the wait that a Retry-After header can ask for, so that
// a wrong header cannot stall a run until its context ends.
const maxRetryAfter = 2 * time.Minute

// backoff computes the pause between attempts: an exponential ceiling with
// equal jitter, raised to the server's Retry-After when that is longer.
type backoff struct {
	base time.Duration
	max  time.Duration
}

// delay returns the pause after the given failed attempt, counted from 1.
// jitter is a random number in [0, 1). The pause lies between half the
// ceiling and the ceiling, where the ceiling is base doubled per attempt up
// to max. A retryAfter above that pause replaces it, capped at maxRetryAfter
// plus a jitter of up to base, so that salesmen that received the same
// Retry-After do not all retry in the same instant.
func (b backoff) delay(attempt int, retryAfter time.Duration, jitter float64) time.Duration {
	ceiling := b.base
	for i := 1; i < attempt && ceiling < b.max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, b.max)
	pause := ceiling/2 + time.Duration(jitter*float64(ceiling/2))
	if retryAfter <= 0 {
		return pause
	}

	honoured := min(retryAfter, maxRetryAfter) + time.Duration(jitter*float64(b.base))
	return max(pause, honoured)
}

// parseRetryAfter reads a Retry-After header in either of its forms, a
// number of seconds or an HTTP date. It returns 0 for a missing, invalid or
// past value.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		// The cap here also keeps the multiplication below from overflowing.
		seconds = min(seconds, int64(maxRetryAfter/time.Second))
		return time.Duration(seconds) * time.Second
	}
	when, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	return max(when.Sub(now), 0)
}

// retryable reports whether a later attempt of the same request may succeed:
// after a network error, a timeout, a 5xx or a 429.
func retryable(resp response, err error) bool {
	if err != nil {
		return true
	}
	return resp.status >= 500 || resp.status == http.StatusTooManyRequests
}

// retrier repeats a request that failed in a retryable way. One retrier
// serves one salesman, because its random source is not safe for concurrent
// use.
type retrier struct {
	backoff     backoff
	maxAttempts int
	random      *rand.Rand
	logger      *slog.Logger
}

// do calls send until it returns a response that is not retryable, the
// attempts run out or ctx ends. It returns the last response and the number
// of attempts made. The caller judges the response's status.
func (r *retrier) do(ctx context.Context, send func(context.Context) (response, error)) (response, int, error) {
	for attempt := 1; ; attempt++ {
		resp, err := send(ctx)
		if ctx.Err() != nil {
			return resp, attempt, context.Cause(ctx)
		}
		if !retryable(resp, err) {
			return resp, attempt, nil
		}
		if err == nil {
			err = newStatusError(resp)
		}
		if attempt >= r.maxAttempts {
			return resp, attempt, fmt.Errorf("failed after %d attempts: %w", attempt, err)
		}

		pause := r.backoff.delay(attempt, parseRetryAfter(resp.header.Get("Retry-After"), time.Now()), r.random.Float64())
		r.logger.Debug("request will be retried", "attempt", attempt, "pause", pause, "error", err)
		if err := sleep(ctx, pause); err != nil {
			return resp, attempt, err
		}
	}
}

// sleep pauses for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		return nil
	}
}

// maxErrorBodyLength bounds how much of an error response is kept for logs.
const maxErrorBodyLength = 512

// statusError is a response whose status the caller did not expect. Its body
// is the gateway's public error, which names the field and the rule.
type statusError struct {
	status int
	body   string
}

func newStatusError(resp response) *statusError {
	body := strings.TrimSpace(string(resp.body))
	if len(body) > maxErrorBodyLength {
		body = body[:maxErrorBodyLength] + "..."
	}
	return &statusError{status: resp.status, body: body}
}

func (e *statusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.status, e.body)
}
