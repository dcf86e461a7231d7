package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/visitrelay/visitrelay/appliance"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// A clinic deleted on-prem after the gateway accepted a visit for it: the
// database rejects the visit for its content. It must reach dead letters
// after bounded retries, other visits must keep flowing, and a replay after
// the fix must store it once.
func TestRejectedVisitDeadLetteredAndReplayed(t *testing.T) {
	ctx := context.Background()
	e := relaytest.Start(t)
	e.StopAppliance()
	e.ApplianceConfig().Committer.MaxAttempts = 3
	token := e.Login("anna.berger")

	rejectedID := uuid.NewString()
	post := func(id, clinic string) {
		t.Helper()
		body := map[string]any{"visitId": id, "clientId": clinic, "userId": "23",
			"proposedDevices": []int{1}, "dateTime": time.Now().UTC().Format(time.RFC3339)}
		if r := e.Do(http.MethodPost, "/api/v1/visits", token, body); r.Status != http.StatusCreated {
			t.Fatalf("post visit for clinic %s: status %d: %s", clinic, r.Status, r.Body)
		}
	}
	post(rejectedID, "110")
	if _, err := e.Pool.Exec(ctx, "DELETE FROM clients WHERE id = '110'"); err != nil {
		t.Fatalf("delete clinic 110: %v", err)
	}
	goodIDs := []string{uuid.NewString(), uuid.NewString()}
	post(goodIDs[0], "101")

	e.StartAppliance()
	post(goodIDs[1], "102")
	e.WaitVisits(2, 30*time.Second)

	nc, err := appliance.ConnectRunning(e.ApplianceConfig().StateDir)
	if err != nil {
		t.Fatalf("connect to appliance: %v", err)
	}
	defer nc.Close()
	dls, err := appliance.NewDeadLetters(ctx, nc, e.Pool)
	if err != nil {
		t.Fatalf("open dead letters: %v", err)
	}
	var list []appliance.DeadLetter
	e.WaitFor("the rejected visit reaches dead letters", 60*time.Second, func() bool {
		list, err = dls.List(ctx)
		return err == nil && len(list) == 1
	})
	dl := list[0]
	if dl.VisitID != rejectedID {
		t.Errorf("dead letter for visit %s, want %s", dl.VisitID, rejectedID)
	}
	if dl.Attempts != 3 {
		t.Errorf("dead letter after %d attempts, want MaxAttempts 3", dl.Attempts)
	}
	if !strings.Contains(dl.Reason, `(client_id)=(110)`) {
		t.Errorf("reason %q does not name the unknown clinic 110", dl.Reason)
	}
	if got := e.CountVisits(); got != 2 {
		t.Errorf("%d rows while the visit is dead-lettered, want the 2 good ones", got)
	}

	if err := dls.Replay(ctx, rejectedID); err == nil {
		t.Fatal("replay succeeded before the clinic was restored")
	}
	if _, err := e.Pool.Exec(ctx, "INSERT INTO clients (id, name, city) VALUES ('110', 'Praxis 110', 'Graz')"); err != nil {
		t.Fatalf("restore clinic 110: %v", err)
	}
	if err := dls.Replay(ctx, rejectedID); err != nil {
		t.Fatalf("replay after the fix: %v", err)
	}
	if err := dls.Replay(ctx, rejectedID); err == nil {
		t.Error("a second replay found the dead letter still there")
	}

	var n int
	if err := e.Pool.QueryRow(ctx, "SELECT count(*) FROM visits WHERE visit_id = $1", rejectedID).Scan(&n); err != nil || n != 1 {
		t.Errorf("replayed visit has %d rows (err %v), want 1", n, err)
	}
	if got := e.CountVisits(); got != 3 {
		t.Errorf("%d rows after the replay, want 3", got)
	}
	if list, _ := dls.List(ctx); len(list) != 0 {
		t.Errorf("%d dead letters left after the replay, want 0", len(list))
	}
}

func TestDiscardIsRecorded(t *testing.T) {
	ctx := context.Background()
	e := relaytest.Start(t)
	e.StopAppliance()
	e.ApplianceConfig().Committer.MaxAttempts = 1
	token := e.Login("anna.berger")

	id := uuid.NewString()
	body := map[string]any{"visitId": id, "clientId": "109", "userId": "23", "dateTime": time.Now().UTC().Format(time.RFC3339)}
	if r := e.Do(http.MethodPost, "/api/v1/visits", token, body); r.Status != http.StatusCreated {
		t.Fatalf("post: status %d: %s", r.Status, r.Body)
	}
	if _, err := e.Pool.Exec(ctx, "DELETE FROM clients WHERE id = '109'"); err != nil {
		t.Fatal(err)
	}
	e.StartAppliance()

	nc, err := appliance.ConnectRunning(e.ApplianceConfig().StateDir)
	if err != nil {
		t.Fatalf("connect to appliance: %v", err)
	}
	defer nc.Close()
	dls, err := appliance.NewDeadLetters(ctx, nc, e.Pool)
	if err != nil {
		t.Fatalf("open dead letters: %v", err)
	}
	e.WaitFor("the visit reaches dead letters", 30*time.Second, func() bool {
		list, err := dls.List(ctx)
		return err == nil && len(list) == 1
	})
	if err := dls.Discard(ctx, id, ""); err == nil {
		t.Error("discard without a reason succeeded")
	}
	if err := dls.Discard(ctx, id, "clinic closed for good"); err != nil {
		t.Fatalf("discard: %v", err)
	}

	var reason, deadReason string
	err = e.Pool.QueryRow(ctx, "SELECT reason, dead_letter_reason FROM discarded_visits WHERE visit_id = $1", id).Scan(&reason, &deadReason)
	if err != nil {
		t.Fatalf("read discard record: %v", err)
	}
	if reason != "clinic closed for good" || deadReason == "" {
		t.Errorf("discard record reason %q, dead letter reason %q", reason, deadReason)
	}
	if list, _ := dls.List(ctx); len(list) != 0 {
		t.Errorf("%d dead letters after discard, want 0", len(list))
	}
}
