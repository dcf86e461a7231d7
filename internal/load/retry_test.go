package load

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/visit"
)

func TestBackoffDelay(t *testing.T) {
	b := backoff{base: 100 * time.Millisecond, max: time.Second}
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		jitter     float64
		want       time.Duration
	}{
		{"first attempt without jitter", 1, 0, 0, 50 * time.Millisecond},
		{"first attempt half jitter", 1, 0, 0.5, 75 * time.Millisecond},
		{"third attempt doubles twice", 3, 0, 0, 200 * time.Millisecond},
		{"ceiling capped at max", 10, 0, 0.5, 750 * time.Millisecond},
		{"huge attempt does not overflow", 1000, 0, 0, 500 * time.Millisecond},
		{"retry-after above backoff is honoured", 1, 3 * time.Second, 0, 3 * time.Second},
		{"retry-after gets jitter up to base", 1, 3 * time.Second, 0.5, 3*time.Second + 50*time.Millisecond},
		{"retry-after below backoff keeps backoff", 5, 10 * time.Millisecond, 0, 500 * time.Millisecond},
		{"retry-after capped", 1, time.Hour, 0, maxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.delay(tt.attempt, tt.retryAfter, tt.jitter); got != tt.want {
				t.Errorf("delay(%d, %s, %g) = %s, want %s", tt.attempt, tt.retryAfter, tt.jitter, got, tt.want)
			}
		})
	}
}

func TestBackoffDelayBounds(t *testing.T) {
	b := backoff{base: 100 * time.Millisecond, max: time.Second}
	for attempt := 1; attempt <= 40; attempt++ {
		for _, jitter := range []float64{0, 0.25, 0.999999} {
			got := b.delay(attempt, 0, jitter)
			if got < b.base/2 || got > b.max {
				t.Errorf("delay(%d, 0, %g) = %s, want between %s and %s", attempt, jitter, got, b.base/2, b.max)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{"missing", "", 0},
		{"seconds", "5", 5 * time.Second},
		{"seconds with spaces", " 7 ", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-3", 0},
		{"garbage", "soon", 0},
		{"huge seconds capped", "99999999999999", maxRetryAfter},
		{"http date", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"http date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.value, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.value, got, tt.want)
			}
		})
	}
}

// fakeVisitGateway records the visitId of every POST /api/v1/visits and
// responds to each with the next status in its script, 201 once the script
// ends.
// A fake is enough here: these tests check only what the client sends
// across retries, not what a real gateway does with it.
type fakeVisitGateway struct {
	mu       sync.Mutex
	statuses []int
	visitIDs []string
	bodies   []string
}

func (f *fakeVisitGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var v visit.Visit
	_ = json.Unmarshal(body, &v)

	f.mu.Lock()
	f.visitIDs = append(f.visitIDs, v.VisitID)
	f.bodies = append(f.bodies, string(body))
	status := http.StatusCreated
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "0")
	}
	w.WriteHeader(status)
	if status == http.StatusCreated {
		_ = json.NewEncoder(w).Encode(acknowledgement{VisitID: v.VisitID, Status: "accepted", AcceptedAt: time.Now()})
		return
	}
	_, _ = io.WriteString(w, `{"code":"test","message":"scripted answer"}`)
}

func newFakeGatewaySession(t *testing.T, fake *fakeVisitGateway, maxAttempts int) *session {
	t.Helper()
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)
	o := Options{
		GatewayURL:  server.URL,
		UsersFile:   "unused.csv",
		Seed:        1,
		MaxAttempts: maxAttempts,
		RetryBase:   time.Millisecond,
		RetryMax:    4 * time.Millisecond,
		HTTPClient:  server.Client(),
	}.withDefaults()
	s := newRunner(o).newSession(0, account{ID: "23", Username: "anna.berger"})
	s.token = "test-token"
	return s
}

func newTrackedVisit(t *testing.T) *tracked {
	t.Helper()
	v := visit.Visit{
		VisitID:         "0b6f2f5e-8d52-4f4e-9a61-2f1c3f2d9c10",
		ClientID:        "102",
		UserID:          "23",
		ProposedDevices: []int64{1, 2},
		SoldDevices:     []int64{2},
		DateTime:        time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC),
	}
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &tracked{visit: v, body: body}
}

func TestPostRetryReusesVisitIDFakeGateway(t *testing.T) {
	fake := &fakeVisitGateway{statuses: []int{503, 503, 429, 502}}
	s := newFakeGatewaySession(t, fake, 20)
	v := newTrackedVisit(t)

	ack, attempts, err := s.post(context.Background(), v, false)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	if attempts != 5 {
		t.Errorf("attempts = %d, want 5", attempts)
	}
	if ack.status != http.StatusCreated {
		t.Errorf("acknowledgement status = %d, want 201", ack.status)
	}
	if len(fake.visitIDs) != 5 {
		t.Fatalf("gateway saw %d posts, want 5", len(fake.visitIDs))
	}
	for i, id := range fake.visitIDs {
		if id != v.visit.VisitID {
			t.Errorf("post %d carried visitId %q, want %q", i+1, id, v.visit.VisitID)
		}
		if fake.bodies[i] != string(v.body) {
			t.Errorf("post %d body differs from the first:\n%s\n%s", i+1, fake.bodies[i], v.body)
		}
	}
}

func TestPostGivesUpAfterMaxAttemptsFakeGateway(t *testing.T) {
	fake := &fakeVisitGateway{statuses: []int{503, 503, 503, 503}}
	s := newFakeGatewaySession(t, fake, 3)

	_, attempts, err := s.post(context.Background(), newTrackedVisit(t), false)
	if err == nil {
		t.Fatal("post returned no error, want one after 3 attempts")
	}
	if attempts != 3 || len(fake.visitIDs) != 3 {
		t.Errorf("attempts = %d, gateway saw %d posts, want 3 and 3", attempts, len(fake.visitIDs))
	}
	var status *statusError
	if !errors.As(err, &status) || status.status != http.StatusServiceUnavailable {
		t.Errorf("post error = %v, want a statusError with 503", err)
	}
}

func TestPostRejectionNotRetriedFakeGateway(t *testing.T) {
	fake := &fakeVisitGateway{statuses: []int{409}}
	s := newFakeGatewaySession(t, fake, 20)

	_, attempts, err := s.post(context.Background(), newTrackedVisit(t), false)
	var status *statusError
	if !errors.As(err, &status) || status.status != http.StatusConflict {
		t.Fatalf("post error = %v, want a statusError with 409", err)
	}
	if attempts != 1 {
		t.Errorf("attempts = %d, want 1", attempts)
	}
}

func TestRetrierStopsWhenContextEnds(t *testing.T) {
	r := &retrier{backoff: backoff{base: time.Hour, max: time.Hour}, maxAttempts: 20, random: newTestRandom(), logger: discardLogger()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()

	calls := 0
	_, attempts, err := r.do(ctx, func(context.Context) (response, error) {
		calls++
		return response{status: http.StatusServiceUnavailable}, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("do error = %v, want context.DeadlineExceeded", err)
	}
	if attempts != 1 || calls != 1 {
		t.Errorf("attempts = %d, calls = %d, want 1 and 1", attempts, calls)
	}
}

func newTestRandom() *rand.Rand {
	return rand.New(rand.NewPCG(1, 2))
}

func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
