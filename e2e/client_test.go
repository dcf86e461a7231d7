package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// requestTimeout bounds every request the tests send, so that a gateway
// that stops responding fails the test instead of hanging it.
const requestTimeout = 30 * time.Second

// commitTimeout bounds the wait for visits to reach the database.
const commitTimeout = 60 * time.Second

// client is the HTTP client of every request in this package.
var client = &http.Client{Timeout: requestTimeout}

// startEnv starts the harness like relaytest.Start. When the test ends it
// closes the client's idle connections before the harness stops the
// gateway, because the gateway's shutdown waits up to its 30s read timeout
// for a connection that has not sent a request yet (see
// TestGatewayShutdownSkipsUnusedConnection).
func startEnv(t *testing.T) *relaytest.Env {
	t.Helper()
	e := relaytest.Start(t)
	t.Cleanup(client.CloseIdleConnections)
	return e
}

// restartGateway stops and starts the gateway on the same ports. It closes
// the client's idle connections first, for the reason given at startEnv.
func restartGateway(e *relaytest.Env) {
	client.CloseIdleConnections()
	e.StopGateway()
	e.StartGateway()
}

// fixtureUsers are the fixture salesmen, in a fixed order.
var fixtureUsers = []struct{ username, id string }{
	{"anna.berger", "23"}, {"luca.rossi", "7"}, {"eva.novak", "12"},
}

// postedVisit is a visit as a phone posts it.
type postedVisit struct {
	VisitID         string  `json:"visitId,omitempty"`
	ClientID        string  `json:"clientId"`
	UserID          string  `json:"userId"`
	ProposedDevices []int64 `json:"proposedDevices"`
	SoldDevices     []int64 `json:"soldDevices"`
	DateTime        string  `json:"dateTime"`
	ClientNotes     string  `json:"clientNotes"`
	AdditionalNotes string  `json:"additionalNotes"`
}

// storedVisit is a row of the visits table with its visit_devices rows, in
// the form the tests compare.
type storedVisit struct {
	VisitID         string
	UserID          string
	ClientID        string
	DateTime        time.Time // UTC
	ClientNotes     string
	AdditionalNotes string
	ProposedDevices []int64 // in position order
	SoldDevices     []int64 // in position order
}

// acceptance is the gateway's response to a posted visit.
type acceptance struct {
	VisitID    string    `json:"visitId"`
	Status     string    `json:"status"`
	AcceptedAt time.Time `json:"acceptedAt"`
}

// errorResponse is the gateway's body for every error status.
type errorResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Errors  []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// sampleNotes are notes that a database or a page could mangle: umlauts,
// quotes, SQL and HTML lookalikes, control characters, characters outside
// the Basic Multilingual Plane, and the longest notes a visit may carry.
var sampleNotes = []string{
	"",
	"Grüße an Frau Dr. Müller: Gerät läuft, Größe ÄÖÜ ß",
	"Robert'); DROP TABLE visits;--",
	`<script>alert("x")</script> & <b>bold</b> &amp;`,
	"line one\nline two\ttab \"quoted\" \\ backslash",
	"stethoscope 🩺 and 日本語",
	"$1 $2 %s %d {{.}} ${HOME} ?",
	strings.Repeat("ä", 4000),
}

// dateTimeZones are the offsets phones write dateTime with.
var dateTimeZones = []*time.Location{
	time.UTC,
	time.FixedZone("CEST", 2*3600),
	time.FixedZone("NST", -(3*3600 + 30*60)),
	time.FixedZone("NPT", 5*3600+45*60),
	time.FixedZone("LINT", 14*3600),
}

// newVisit returns a valid visit of userID with a fresh visitId and varied
// content drawn from rng. Times have millisecond precision, as a browser's
// Date.toISOString writes them.
func newVisit(rng *rand.Rand, userID string) postedVisit {
	devices := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	rng.Shuffle(len(devices), func(i, j int) { devices[i], devices[j] = devices[j], devices[i] })
	proposed := slices.Clone(devices[:rng.IntN(7)])
	sold := []int64{}
	for _, id := range proposed {
		if rng.IntN(2) == 0 {
			sold = append(sold, id)
		}
	}
	rng.Shuffle(len(sold), func(i, j int) { sold[i], sold[j] = sold[j], sold[i] })

	ago := time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))).Truncate(time.Millisecond)
	at := time.Now().Add(-ago).Truncate(time.Millisecond).In(dateTimeZones[rng.IntN(len(dateTimeZones))])
	return postedVisit{
		VisitID:         uuid.NewString(),
		ClientID:        fmt.Sprint(101 + rng.IntN(10)),
		UserID:          userID,
		ProposedDevices: proposed,
		SoldDevices:     sold,
		DateTime:        at.Format("2006-01-02T15:04:05.000Z07:00"),
		ClientNotes:     sampleNotes[rng.IntN(len(sampleNotes))],
		AdditionalNotes: sampleNotes[rng.IntN(len(sampleNotes))],
	}
}

// encodeVisit writes v as JSON without escaping <, > and &, as a phone's
// JSON.stringify does.
func encodeVisit(v postedVisit) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A struct of strings and integers always encodes.
	_ = enc.Encode(v)
	return buf.Bytes()
}

// send sends one request to the gateway. An empty contentType sends none.
func send(baseURL, method, path, token, contentType string, body []byte) (relaytest.Response, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, baseURL+path, reader)
	if err != nil {
		return relaytest.Response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return relaytest.Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return relaytest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, err
}

// postVisit posts v as JSON and returns the response.
func postVisit(baseURL, token string, v postedVisit) (relaytest.Response, error) {
	return send(baseURL, http.MethodPost, "/api/v1/visits", token, "application/json", encodeVisit(v))
}

// mustPost posts v and fails the test unless the gateway responds with
// status want.
func mustPost(t *testing.T, e *relaytest.Env, token string, v postedVisit, want int) acceptance {
	t.Helper()
	resp, err := postVisit(e.URL, token, v)
	if err != nil {
		t.Fatalf("post visit %s: %v", v.VisitID, err)
	}
	if resp.Status != want {
		t.Fatalf("post visit %s: status %d, want %d: %s", v.VisitID, resp.Status, want, resp.Body)
	}
	if want != http.StatusCreated && want != http.StatusOK {
		return acceptance{}
	}
	return decodeAcceptance(t, resp)
}

func decodeAcceptance(t *testing.T, resp relaytest.Response) acceptance {
	t.Helper()
	var a acceptance
	if err := json.Unmarshal(resp.Body, &a); err != nil {
		t.Fatalf("decode acceptance %s: %v", resp.Body, err)
	}
	return a
}

func decodeError(t *testing.T, resp relaytest.Response) errorResponse {
	t.Helper()
	var body errorResponse
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("decode error body %q: %v", resp.Body, err)
	}
	return body
}

// loginAll returns a token for each fixture user, by user id.
func loginAll(e *relaytest.Env) map[string]string {
	tokens := map[string]string{}
	for _, u := range fixtureUsers {
		tokens[u.id] = e.Login(u.username)
	}
	return tokens
}

// postAll posts visits from workers concurrent clients, each visit once,
// fails the test unless every post gets 201, and returns the responses
// by visitId.
func postAll(t *testing.T, e *relaytest.Env, tokens map[string]string, visits []postedVisit, workers int) map[string]acceptance {
	t.Helper()
	jobs := make(chan postedVisit)
	var mu sync.Mutex
	var errs []error
	accepted := make(map[string]acceptance, len(visits))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for v := range jobs {
				a, err := postCreated(e.URL, tokens[v.UserID], v)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				accepted[v.VisitID] = a
				mu.Unlock()
			}
		})
	}
	for _, v := range visits {
		jobs <- v
	}
	close(jobs)
	wg.Wait()

	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return accepted
}

// postCreated posts v and returns an error unless the gateway responds
// with 201 and an acceptance of v.
func postCreated(baseURL, token string, v postedVisit) (acceptance, error) {
	resp, err := postVisit(baseURL, token, v)
	if err != nil {
		return acceptance{}, fmt.Errorf("post visit %s: %w", v.VisitID, err)
	}
	if resp.Status != http.StatusCreated {
		return acceptance{}, fmt.Errorf("post visit %s: status %d, want 201: %s", v.VisitID, resp.Status, resp.Body)
	}
	var a acceptance
	if err := json.Unmarshal(resp.Body, &a); err != nil {
		return acceptance{}, fmt.Errorf("decode acceptance of visit %s: %w", v.VisitID, err)
	}
	if a.VisitID != v.VisitID || a.Status != "accepted" || a.AcceptedAt.IsZero() {
		return acceptance{}, fmt.Errorf("post visit %s: got acceptance %s", v.VisitID, resp.Body)
	}
	return a, nil
}

// newVisits returns n visits spread over the fixture users.
func newVisits(rng *rand.Rand, n int) []postedVisit {
	visits := make([]postedVisit, n)
	for i := range visits {
		visits[i] = newVisit(rng, fixtureUsers[i%len(fixtureUsers)].id)
	}
	return visits
}

// wantStored returns the rows that posting visits must produce, by visitId.
// Sold devices are stored as a flag on the proposed ones, so they come back
// in the order they were proposed.
func wantStored(t *testing.T, visits []postedVisit) map[string]storedVisit {
	t.Helper()
	want := make(map[string]storedVisit, len(visits))
	for _, v := range visits {
		at, err := time.Parse(time.RFC3339Nano, v.DateTime)
		if err != nil {
			t.Fatalf("parse dateTime of posted visit %s: %v", v.VisitID, err)
		}
		sold := []int64{}
		for _, id := range v.ProposedDevices {
			if slices.Contains(v.SoldDevices, id) {
				sold = append(sold, id)
			}
		}
		want[v.VisitID] = storedVisit{
			VisitID:         v.VisitID,
			UserID:          v.UserID,
			ClientID:        v.ClientID,
			DateTime:        at.UTC(),
			ClientNotes:     v.ClientNotes,
			AdditionalNotes: v.AdditionalNotes,
			ProposedDevices: append([]int64{}, v.ProposedDevices...),
			SoldDevices:     sold,
		}
	}
	return want
}

// readStored returns every row of the visits table with its devices, by
// visitId.
func readStored(t *testing.T, pool *pgxpool.Pool) map[string]storedVisit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `
SELECT v.visit_id::text, v.user_id, v.client_id, v.visited_at, v.client_notes, v.additional_notes,
       coalesce(array_agg(d.device_id ORDER BY d.position) FILTER (WHERE d.device_id IS NOT NULL), '{}'),
       coalesce(array_agg(d.device_id ORDER BY d.position) FILTER (WHERE d.sold), '{}')
FROM visits v LEFT JOIN visit_devices d USING (visit_id)
GROUP BY v.visit_id`)
	if err != nil {
		t.Fatalf("read stored visits: %v", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedVisit, error) {
		var s storedVisit
		err := row.Scan(&s.VisitID, &s.UserID, &s.ClientID, &s.DateTime, &s.ClientNotes,
			&s.AdditionalNotes, &s.ProposedDevices, &s.SoldDevices)
		s.DateTime = s.DateTime.UTC()
		return s, err
	})
	if err != nil {
		t.Fatalf("read stored visits: %v", err)
	}
	stored := make(map[string]storedVisit, len(list))
	for _, s := range list {
		stored[s.VisitID] = s
	}
	return stored
}

// checkStored fails the test unless the database holds exactly the posted
// visits, each field as posted.
func checkStored(t *testing.T, e *relaytest.Env, visits []postedVisit) {
	t.Helper()
	if diff := cmp.Diff(wantStored(t, visits), readStored(t, e.Pool)); diff != "" {
		t.Errorf("stored visits differ from the posted ones (-want +got):\n%s", diff)
	}
}

// waitCommitted waits until the appliance's committer has committed and
// acked n visits since it started.
func waitCommitted(t *testing.T, e *relaytest.Env, n int64) {
	t.Helper()
	e.WaitFor(fmt.Sprintf("the committer has committed %d visits", n), commitTimeout, func() bool {
		return e.Appliance.Stats().Committed >= n
	})
}
