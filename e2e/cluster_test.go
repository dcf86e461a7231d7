package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// A three-node gateway cluster keeps accepting visits on the other nodes
// while one node is down, and every acknowledged visit is stored once.
func TestGatewayClusterNodeDown(t *testing.T) {
	c := relaytest.StartCluster(t, 3)
	login := func(node int) string {
		r, err := relaytest.Send(c.URL(node), http.MethodPost, "/api/v1/login", "",
			map[string]string{"username": "anna.berger", "password": relaytest.Password})
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("login on node %d: %v %d %s", node, err, r.Status, r.Body)
		}
		return tokenOf(t, r.Body)
	}
	token := login(0)

	var mu sync.Mutex
	var acked []string
	post := func(node, n int) {
		for range n {
			id := uuid.NewString()
			body := map[string]any{"visitId": id, "clientId": "103", "userId": "23",
				"proposedDevices": []int{4}, "dateTime": time.Now().UTC().Format(time.RFC3339)}
			r, err := relaytest.Send(c.URL(node), http.MethodPost, "/api/v1/visits", token, body)
			if err == nil && r.Status == http.StatusCreated {
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}
	}

	for node := range 3 {
		post(node, 20)
	}
	// Stop the node the appliance's leafnode link is on, so that the link
	// must fail over to another node.
	down := -1
	for i, g := range c.Gateways {
		if g.LeafConnected() {
			down = i
		}
	}
	if down < 0 {
		t.Fatal("no gateway node has the appliance's leafnode link")
	}
	up := []int{(down + 1) % 3, (down + 2) % 3}
	c.StopGateway(down)
	post(up[0], 30)
	post(up[1], 30)
	c.StartGateway(down)
	post(down, 20)

	if len(acked) != 140 {
		t.Errorf("%d of 140 posts acknowledged; the two running nodes should take posts while the third is down", len(acked))
	}
	waitRows(t, c, len(acked), 3*time.Minute)
	assertStoredOnce(t, c, acked)
}

func tokenOf(t *testing.T, body []byte) string {
	t.Helper()
	var v struct{ Token string }
	if err := json.Unmarshal(body, &v); err != nil || v.Token == "" {
		t.Fatalf("decode login answer %s: %v", body, err)
	}
	return v.Token
}

func waitRows(t *testing.T, c *relaytest.Cluster, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got int
		if err := c.Pool.QueryRow(context.Background(), "SELECT count(*) FROM visits").Scan(&got); err != nil {
			t.Fatalf("count visits: %v", err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d visits stored after %s", got, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func assertStoredOnce(t *testing.T, c *relaytest.Cluster, ids []string) {
	t.Helper()
	var rows, distinct, matched int
	err := c.Pool.QueryRow(context.Background(), `
SELECT count(*), count(DISTINCT visit_id), count(*) FILTER (WHERE visit_id::text = ANY ($1))
FROM visits`, ids).Scan(&rows, &distinct, &matched)
	if err != nil {
		t.Fatalf("read visits: %v", err)
	}
	if rows != len(ids) || distinct != rows || matched != len(ids) {
		t.Errorf("%d rows, %d distinct, %d of %d acknowledged ids; want each acknowledged visit once", rows, distinct, matched, len(ids))
	}
}

// A three-node appliance cluster keeps committing while one node stops in
// the middle of a drain, and the nodes share the work without storing a
// visit twice.
func TestApplianceClusterNodeDown(t *testing.T) {
	c := relaytest.StartApplianceCluster(t, 3)
	token := c.Login("anna.berger")

	var acked []string
	post := func(n int) {
		for range n {
			id := uuid.NewString()
			body := map[string]any{"visitId": id, "clientId": "105", "userId": "23",
				"proposedDevices": []int{6}, "dateTime": time.Now().UTC().Format(time.RFC3339)}
			if r := c.Do(http.MethodPost, "/api/v1/visits", token, body); r.Status == http.StatusCreated {
				acked = append(acked, id)
			}
		}
	}
	post(150)
	c.StopNode(1)
	post(150)

	if len(acked) != 300 {
		t.Errorf("%d of 300 posts acknowledged", len(acked))
	}
	c.WaitVisits(len(acked), 3*time.Minute)

	var committedBy []int64
	for i, node := range c.Nodes {
		if node != nil {
			committedBy = append(committedBy, node.Stats().Committed)
			t.Logf("appliance node %d committed %d visits", i, node.Stats().Committed)
		}
	}
	var rows, distinct int
	if err := c.Pool.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT visit_id) FROM visits").Scan(&rows, &distinct); err != nil {
		t.Fatalf("count visits: %v", err)
	}
	if rows != len(acked) || distinct != rows {
		t.Errorf("%d rows, %d distinct, want %d visits once each", rows, distinct, len(acked))
	}
}
