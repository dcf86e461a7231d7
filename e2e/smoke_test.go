package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// The customer's own example: no visitId, so the gateway derives one.
const customerExample = `{"clientId": "102", "userId": "23", "proposedDevices": [1, 2, 5], "soldDevices": [1, 5],
 "dateTime": "2023-09-20T15:45:30Z", "clientNotes": "", "additionalNotes": ""}`

func TestCustomerExampleStored(t *testing.T) {
	e := relaytest.Start(t)
	token := e.Login("anna.berger")

	first := e.Do(http.MethodPost, "/api/v1/visits", token, []byte(customerExample))
	if first.Status != http.StatusCreated {
		t.Fatalf("first post: status %d, want 201: %s", first.Status, first.Body)
	}
	retry := e.Do(http.MethodPost, "/api/v1/visits", token, []byte(customerExample))
	if retry.Status != http.StatusOK {
		t.Fatalf("retry: status %d, want 200: %s", retry.Status, retry.Body)
	}
	if string(retry.Body) != string(first.Body) {
		t.Errorf("retry body %s differs from first %s", retry.Body, first.Body)
	}

	e.WaitVisits(1, 30*time.Second)
	var clientID string
	var proposed, sold []int64
	err := e.Pool.QueryRow(context.Background(), `
SELECT v.client_id,
       array_agg(d.device_id ORDER BY d.position),
       array_agg(d.device_id ORDER BY d.position) FILTER (WHERE d.sold)
FROM visits v JOIN visit_devices d USING (visit_id) GROUP BY v.visit_id`).Scan(&clientID, &proposed, &sold)
	if err != nil {
		t.Fatalf("read stored visit: %v", err)
	}
	if clientID != "102" || len(proposed) != 3 || len(sold) != 2 {
		t.Errorf("stored clientId %q proposed %v sold %v, want 102 [1 2 5] [1 5]", clientID, proposed, sold)
	}
}
