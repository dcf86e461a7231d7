package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// postWithRetry posts one visit the way the phone's outbox does: it keeps
// the visit and retries with the same visitId until the gateway accepts
// it, here until deadline.
func postWithRetry(baseURL func() string, token, id string, deadline time.Time) error {
	body := map[string]any{
		"visitId": id, "clientId": "103", "userId": "23", "proposedDevices": []int{3}, "soldDevices": []int{},
		"dateTime": time.Now().Add(-time.Minute).Format(time.RFC3339),
	}
	for {
		resp, err := relaytest.Send(baseURL(), http.MethodPost, "/api/v1/visits", token, body)
		if err == nil && (resp.Status == http.StatusCreated || resp.Status == http.StatusOK) {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				return &retryError{status: resp.Status}
			}
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type retryError struct{ status int }

func (e *retryError) Error() string { return http.StatusText(e.status) }

// The gateway is stopped by a timer outside working hours. Visits posted
// around the stop and the start are kept on the phones, accepted once the
// gateway is back, and the appliance reconnects by itself: none is lost or
// stored twice.
func TestWorkingHoursStopStartLosesNothing(t *testing.T) {
	e := relaytest.Start(t)
	token := e.Login("anna.berger")
	url := e.URL
	var mu sync.Mutex
	baseURL := func() string {
		mu.Lock()
		defer mu.Unlock()
		return url
	}

	const phones, perPhone = 10, 6
	var ids []string
	for range phones * perPhone {
		ids = append(ids, uuid.NewString())
	}
	deadline := time.Now().Add(2 * time.Minute)
	errs := make(chan error, len(ids))
	var wg sync.WaitGroup
	for p := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPhone {
				errs <- postWithRetry(baseURL, token, ids[p*perPhone+i], deadline)
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}

	// Stop in the middle of the burst, as the evening timer would, and
	// start again after a pause.
	time.Sleep(200 * time.Millisecond)
	e.StopGateway()
	time.Sleep(3 * time.Second)
	e.StartGateway()
	mu.Lock()
	url = e.URL
	mu.Unlock()

	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a phone could not deliver a visit: %v", err)
		}
	}
	e.WaitFor("the appliance reconnects to the restarted gateway", 30*time.Second, e.Appliance.LeafConnected)
	e.WaitVisits(len(ids), 90*time.Second)
	stored := e.StoredVisits()
	for _, id := range ids {
		if _, ok := stored[id]; !ok {
			t.Errorf("visit %s is not in the database", id)
		}
	}
}
