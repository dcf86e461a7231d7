package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// postResult is one post of a visit and the gateway's response.
type postResult struct {
	visitID string
	status  int
	body    []byte
	err     error
}

func TestConcurrentPostsStoredOnce(t *testing.T) {
	const total, workers = 1000, 20
	e := startEnv(t)
	tokens := loginAll(e)
	visits := newVisits(rand.New(rand.NewPCG(1, 1000)), total)

	// Every tenth visit is posted twice. Half of the second posts directly
	// follow the first, so another worker sends them while the first is in
	// flight. The other half come after all first posts, as a late retry.
	var jobs, late []postedVisit
	wantStatuses := map[string][]int{}
	for i, v := range visits {
		jobs = append(jobs, v)
		wantStatuses[v.VisitID] = []int{http.StatusCreated}
		if i%10 != 0 {
			continue
		}
		wantStatuses[v.VisitID] = []int{http.StatusOK, http.StatusCreated}
		if i%20 == 0 {
			jobs = append(jobs, v)
		} else {
			late = append(late, v)
		}
	}
	jobs = append(jobs, late...)
	results := postConcurrently(e, tokens, jobs, workers)

	gotStatuses := map[string][]int{}
	accepted := map[string]acceptance{}
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("post visit %s: %v", r.visitID, r.err)
		}
		gotStatuses[r.visitID] = append(gotStatuses[r.visitID], r.status)
		slices.Sort(gotStatuses[r.visitID])
		a := decodeAcceptance(t, relaytest.Response{Body: r.body})
		if a.VisitID != r.visitID || a.Status != "accepted" {
			t.Errorf("post visit %s: got acceptance %s", r.visitID, r.body)
		}
		first, seen := accepted[r.visitID]
		if seen && !first.AcceptedAt.Equal(a.AcceptedAt) {
			t.Errorf("visit %s: acceptedAt %s on one post and %s on the other", r.visitID, first.AcceptedAt, a.AcceptedAt)
		}
		accepted[r.visitID] = a
	}
	if diff := cmp.Diff(wantStatuses, gotStatuses); diff != "" {
		t.Fatalf("statuses by visitId differ (-want +got):\n%s", diff)
	}
	if got := e.CloudStreamMessages(); got != total {
		t.Errorf("gateway stream has %d messages, want %d", got, total)
	}

	e.WaitVisits(total, commitTimeout)
	waitCommitted(t, e, total)
	checkStored(t, e, visits)
	checkStats(t, e, total)
	checkListedStored(t, e, tokens, fixtureUsers[0].id, visits, accepted)
}

// postConcurrently posts the jobs in order from workers concurrent clients
// and returns every response.
func postConcurrently(e *relaytest.Env, tokens map[string]string, jobs []postedVisit, workers int) []postResult {
	queue := make(chan postedVisit)
	var mu sync.Mutex
	var results []postResult
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for v := range queue {
				resp, err := postVisit(e.URL, tokens[v.UserID], v)
				mu.Lock()
				results = append(results, postResult{visitID: v.VisitID, status: resp.Status, body: resp.Body, err: err})
				mu.Unlock()
			}
		})
	}
	for _, v := range jobs {
		queue <- v
	}
	close(queue)
	wg.Wait()
	return results
}

// checkStats fails the test unless, since its start, the committer has
// committed the given number of visits, met none twice and dead-lettered
// none.
func checkStats(t *testing.T, e *relaytest.Env, committed int64) {
	t.Helper()
	want := struct{ Committed, Duplicates, DeadLetters int64 }{committed, 0, 0}
	stats := e.Appliance.Stats()
	got := struct{ Committed, Duplicates, DeadLetters int64 }{stats.Committed, stats.Duplicates, stats.DeadLetters}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("committer counters differ (-want +got):\n%s", diff)
	}
}

// listedVisit is one entry of GET /api/v1/visits.
type listedVisit struct {
	VisitID    string     `json:"visitId"`
	ClientID   string     `json:"clientId"`
	DateTime   time.Time  `json:"dateTime"`
	AcceptedAt time.Time  `json:"acceptedAt"`
	Status     string     `json:"status"`
	StoredAt   *time.Time `json:"storedAt"`
}

// checkListedStored waits until the listing of userID shows each of that
// user's visits as stored, then compares every listed field.
func checkListedStored(t *testing.T, e *relaytest.Env, tokens map[string]string, userID string, visits []postedVisit, accepted map[string]acceptance) {
	t.Helper()
	want := map[string]listedVisit{}
	for _, v := range visits {
		if v.UserID != userID {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, v.DateTime)
		if err != nil {
			t.Fatalf("parse dateTime of posted visit %s: %v", v.VisitID, err)
		}
		want[v.VisitID] = listedVisit{VisitID: v.VisitID, ClientID: v.ClientID, DateTime: at,
			AcceptedAt: accepted[v.VisitID].AcceptedAt, Status: "stored"}
	}

	var got map[string]listedVisit
	e.WaitFor(fmt.Sprintf("the listing of user %s shows %d stored visits", userID, len(want)), commitTimeout, func() bool {
		got = listVisits(t, e, tokens[userID])
		for _, l := range got {
			if l.Status != "stored" {
				return false
			}
		}
		return len(got) >= len(want)
	})
	for id, l := range got {
		if l.StoredAt == nil || l.StoredAt.Before(l.AcceptedAt) {
			t.Errorf("listed visit %s: storedAt %v, want a time after acceptedAt %s", id, l.StoredAt, l.AcceptedAt)
		}
		l.StoredAt = nil
		got[id] = l
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listed visits differ (-want +got):\n%s", diff)
	}
}

// listVisits returns the caller's listed visits by visitId.
func listVisits(t *testing.T, e *relaytest.Env, token string) map[string]listedVisit {
	t.Helper()
	resp, err := send(e.URL, http.MethodGet, "/api/v1/visits", token, "", nil)
	if err != nil {
		t.Fatalf("list visits: %v", err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("list visits: status %d, want 200: %s", resp.Status, resp.Body)
	}
	var body struct{ Visits []listedVisit }
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("decode visit list: %v", err)
	}
	listed := make(map[string]listedVisit, len(body.Visits))
	for _, l := range body.Visits {
		if _, ok := listed[l.VisitID]; ok {
			t.Errorf("visit %s is listed twice", l.VisitID)
		}
		listed[l.VisitID] = l
	}
	return listed
}

func TestApplianceOutageLosesNothing(t *testing.T) {
	const before, during = 12, 300
	e := startEnv(t)
	tokens := loginAll(e)
	rng := rand.New(rand.NewPCG(2, 300))

	first := newVisits(rng, before)
	postAll(t, e, tokens, first, 4)
	e.WaitVisits(before, commitTimeout)
	// Stop only after the acks, so no visit is redelivered after the start.
	waitCommitted(t, e, before)
	e.StopAppliance()

	second := newVisits(rng, during)
	postAll(t, e, tokens, second, 10)
	if got := e.CountVisits(); got != before {
		t.Errorf("visits table has %d rows while the appliance is stopped, want %d", got, before)
	}
	if got := e.CloudStreamMessages(); got != before+during {
		t.Errorf("gateway stream has %d messages, want %d", got, before+during)
	}

	e.StartAppliance()
	e.WaitVisits(before+during, commitTimeout)
	waitCommitted(t, e, during)
	checkStored(t, e, append(first, second...))
	checkStats(t, e, during)
	if got := e.SiteStreamMessages(); got != before+during {
		t.Errorf("appliance stream has %d messages, want %d", got, before+during)
	}
}

func TestGatewayRestartKeepsVisits(t *testing.T) {
	const perPhase = 60
	e := startEnv(t)
	tokens := loginAll(e)
	rng := rand.New(rand.NewPCG(3, 60))

	// The gateway stops while the appliance is still sourcing and committing
	// these visits.
	first := newVisits(rng, perPhase)
	accepted := postAll(t, e, tokens, first, 10)
	restartGateway(e)

	// Tokens survive the restart, and a retry of an acknowledged visit is
	// the same visit.
	for _, v := range first[:10] {
		a := mustPost(t, e, tokens[v.UserID], v, http.StatusOK)
		if diff := cmp.Diff(accepted[v.VisitID], a); diff != "" {
			t.Errorf("retry of visit %s after the restart: response differs (-first +retry):\n%s", v.VisitID, diff)
		}
	}
	second := newVisits(rng, perPhase)
	postAll(t, e, tokens, second, 10)

	e.WaitVisits(2*perPhase, commitTimeout)
	waitCommitted(t, e, 2*perPhase)
	checkStored(t, e, append(first, second...))
	checkStats(t, e, 2*perPhase)
	if got := e.CloudStreamMessages(); got != 2*perPhase {
		t.Errorf("gateway stream has %d messages, want %d", got, 2*perPhase)
	}
	if got := e.SiteStreamMessages(); got != 2*perPhase {
		t.Errorf("appliance stream has %d messages, want %d", got, 2*perPhase)
	}
}
