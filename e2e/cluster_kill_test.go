package e2e

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/faulttest"
	"github.com/visitrelay/visitrelay/internal/health"
	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// Bounds of the cluster kill tests. Each is far above what a run takes on
// 2 busy cores, so that only a stuck cluster reaches it.
const (
	// clusterKillTimeout bounds a test's posting.
	clusterKillTimeout = 5 * time.Minute
	// clusterKillDrainTimeout bounds the wait until every acknowledged
	// visit is stored. A source that lost its gateway node resumes after
	// up to 40 s (nats-server v2.15.3 retries a stale source after a 10 s
	// health check and waits 30 s for an unanswered request).
	clusterKillDrainTimeout = 3 * time.Minute
	// clusterKillRejoinTimeout bounds the wait until a restarted node's
	// replicas are current again.
	clusterKillRejoinTimeout = 2 * time.Minute
	// clusterKillWorkers is the number of concurrent clients.
	clusterKillWorkers = 8
)

// TestGatewayClusterNodeKilled kills, with SIGKILL, the gateway node that
// carries the appliance's leafnode link while clients post a burst spread
// over the three nodes. Posts to the dead node fail at the transport level
// and are retried with the same visitId on another node. The link fails
// over, the node restarts and rejoins, and every acknowledged visit is
// stored exactly once.
func TestGatewayClusterNodeKilled(t *testing.T) {
	const (
		total       = 900
		beforeKill  = 200
		whileKilled = 150
		afterRejoin = 20
	)
	bins := faulttest.Build(t)
	c := faulttest.StartGatewayCluster(t, bins, faulttest.ClusterOptions{DatabaseURL: pgtest.NewDatabase(t)})
	ctx := clusterKillContext(t)
	killed := c.LeafnodeNode(-1, time.Minute)
	replicas, err := c.VisitsReplicas(killed)
	if err != nil {
		t.Fatalf("read the cloud stream's replicas: %v", err)
	}
	t.Logf("the appliance's leafnode link is on %s; cloud stream %s", c.Nodes[killed].Name, replicas)

	poster := c.NewPoster(clusterKillWorkers)
	poster.Rate = 100
	burst := poster.Start(ctx, clusterKillVisits(11, total))
	c.WaitFor("enough visits are acknowledged", clusterKillTimeout, func() bool {
		return poster.Ledger.Acknowledged() >= beforeKill
	})
	c.KillNode(killed)
	killedAt := time.Now()
	ackedAtKill := poster.Ledger.Acknowledged()
	t.Logf("%s killed after %d acknowledged visits", c.Nodes[killed].Name, ackedAtKill)

	// The two other nodes take the burst, the dead node's share included,
	// while the third is down.
	took := c.WaitFor("the two running nodes acknowledge more visits", clusterKillTimeout, func() bool {
		return poster.Ledger.Acknowledged() >= ackedAtKill+whileKilled
	})
	t.Logf("%d more visits acknowledged %s after the kill", whileKilled, took.Round(time.Millisecond))
	moved := c.LeafnodeNode(killed, clusterKillRejoinTimeout)
	t.Logf("the leafnode link moved to %s %s after the kill", c.Nodes[moved].Name, time.Since(killedAt).Round(time.Millisecond))
	if failures := poster.Failures(killed); failures.Network == 0 {
		t.Errorf("no post to the killed %s failed at the transport level; the burst missed the outage", c.Nodes[killed].Name)
	}
	clusterKillCheckStatus(t, c, moved, killed)

	c.StartNode(killed)
	t.Logf("%s ready again %s after the kill", c.Nodes[killed].Name, time.Since(killedAt).Round(time.Millisecond))
	burst.Wait()
	clusterKillRejoinGateway(t, c, poster, killed, afterRejoin)
	c.WaitFor("the status page shows every replica current again", clusterKillRejoinTimeout, func() bool {
		st, err := c.NodeStatus(moved)
		return err == nil && st.Stream.ReplicasCurrent == 3 && !st.HasWarning(health.CodeReplicasLost)
	})

	c.WaitStored(poster.Ledger, clusterKillDrainTimeout)
	c.CheckNoDeadLetters()
	r := c.Check(poster.Ledger, killed)
	if r.Acknowledged != r.Posted {
		t.Errorf("%d of %d posted visits were never acknowledged", r.Posted-r.Acknowledged, r.Posted)
	}
	if r.Posted != total+afterRejoin {
		t.Errorf("%d visits posted, want %d", r.Posted, total+afterRejoin)
	}
	if rows := c.CountRows(); rows != r.Acknowledged {
		t.Errorf("visits table has %d rows, want the %d acknowledged visits", rows, r.Acknowledged)
	}
	for i, node := range c.Nodes {
		f := poster.Failures(i)
		t.Logf("%s: first post of %d visits, %d network errors, %d 5xx or 429 responses",
			node.Name, poster.FirstPostedTo()[i], f.Network, f.Status)
	}
}

// clusterKillRejoinGateway checks that the restarted gateway node accepts
// a login and n posts once each, and that the cloud stream reports its
// replica current.
func clusterKillRejoinGateway(t *testing.T, c *faulttest.GatewayCluster, poster *faulttest.ClusterPoster, node, n int) {
	t.Helper()
	user := faulttest.Users[0]
	token, err := poster.Login(c.Nodes[node].URL, user)
	if err != nil {
		t.Fatalf("log in on the restarted node: %v", err)
	}
	poster.UseToken(user, token)
	client := poster.NewClient()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(12, uint64(n)))
	for range n {
		v := faulttest.NewVisit(rng, user.ID, time.Now().Add(-time.Hour))
		status, body, err := poster.PostOnceTo(ctx, client, node, v)
		if err != nil || status != http.StatusCreated {
			t.Errorf("post visit %s to the restarted %s: status %d, error %v: %s", v.VisitID, c.Nodes[node].Name, status, err, body)
		}
	}

	other := (node + 1) % len(c.Nodes)
	var replicas faulttest.Replicas
	took := c.WaitFor(c.Nodes[node].Name+"'s replica of the cloud stream is current", clusterKillRejoinTimeout, func() bool {
		replicas, err = c.VisitsReplicas(other)
		return err == nil && replicas.Current(c.Nodes[node].Name) && len(replicas.Peers) == len(c.Nodes)-1
	})
	t.Logf("cloud stream replicas current %s after the restart: %s", took.Round(time.Millisecond), replicas)
}

// TestApplianceClusterNodeKilled kills, with SIGKILL, the appliance node
// that leads the committer consumer while the three nodes drain a backlog,
// each with a batch transaction open. The two others finish the drain, the
// killed node's batch included. The node restarts, its replicas catch up,
// and it acks visits from the shared consumer again. Every acknowledged
// visit is stored exactly once.
func TestApplianceClusterNodeKilled(t *testing.T) {
	const (
		backlog   = 600
		round     = 30
		maxRounds = 10
	)
	bins := faulttest.Build(t)
	c := faulttest.StartApplianceCluster(t, bins, faulttest.ClusterOptions{DatabaseURL: pgtest.NewDatabase(t)})
	ctx := clusterKillContext(t)
	poster := c.NewPoster(clusterKillWorkers)

	// The backlog waits in the cloud while the whole cluster is down.
	c.StopNodes(0, 1, 2)
	poster.Run(ctx, clusterKillVisits(21, backlog))

	// With the visits table locked, each node's committer fetches a batch
	// and its INSERT waits for the lock inside the batch transaction.
	lock, err := c.Pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin lock transaction: %v", err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(ctx, "LOCK TABLE visits IN EXCLUSIVE MODE"); err != nil {
		t.Fatalf("lock visits: %v", err)
	}
	c.StartNodes(0, 1, 2)
	c.WaitFor("every node's committer INSERT waits for the lock", time.Minute, func() bool {
		return clusterKillWaitingInserts(ctx, c) >= len(c.Nodes)
	})
	stream, consumer, err := c.CommitterReplicas(0)
	if err != nil {
		t.Fatalf("find the committer consumer's leader: %v", err)
	}
	killed := c.NodeIndex(consumer.Leader)
	if killed < 0 {
		t.Fatalf("the committer consumer's leader %q is no appliance node; consumer %s", consumer.Leader, consumer)
	}
	c.KillNode(killed)
	killedAt := time.Now()
	t.Logf("%s killed with a batch transaction open on each node; stream %s; consumer %s", c.Nodes[killed].Name, stream, consumer)
	if err := lock.Rollback(ctx); err != nil {
		t.Fatalf("release the lock: %v", err)
	}

	// The killed node's batch is redelivered to the others after the
	// committer's 10 s ack wait.
	took := c.WaitStored(poster.Ledger, clusterKillDrainTimeout)
	t.Logf("the two other nodes finished the drain %s after the kill", took.Round(time.Millisecond))
	// The killed node acked no visit, because its batch never got past the
	// lock, so the others must ack each visit of the backlog at least once.
	// A batch whose receipts fail to publish, as while the receipt stream
	// elects a new leader, is acked only after its redelivery, and then
	// counts as duplicates.
	var finished []int64
	c.WaitFor("the other nodes ack every visit of the backlog", time.Minute, func() bool {
		finished = clusterKillFinished(c, killed)
		var sum int64
		for _, n := range finished {
			sum += max(n, 0)
		}
		return sum >= backlog
	})
	t.Logf("visits each node acked as committed or duplicate since the cluster restarted, -1 for the killed one: %v", finished)

	c.StartNodes(killed)
	clusterKillRejoinAppliance(t, c, killed)
	for n := 0; ; n++ {
		st, err := c.NodeStatus(killed)
		if err != nil {
			t.Fatalf("read the status of %s: %v", c.Nodes[killed].Name, err)
		}
		if st.Finished() > 0 {
			t.Logf("%s acked %d visits as committed and %d as duplicates after it rejoined, in %d rounds of %d posts",
				c.Nodes[killed].Name, st.Commits.Committed, st.Commits.Duplicates, n, round)
			break
		}
		if n == maxRounds {
			t.Errorf("%s acked no visit of %d posted after it rejoined", c.Nodes[killed].Name, n*round)
			break
		}
		poster.Run(ctx, clusterKillVisits(uint64(30+n), round))
		c.WaitStored(poster.Ledger, clusterKillDrainTimeout)
		// The status page refreshes its figures every 2 seconds.
		time.Sleep(2500 * time.Millisecond)
	}

	c.CheckNoDeadLetters(killed)
	r := c.Check(poster.Ledger)
	if r.Acknowledged != r.Posted {
		t.Errorf("%d of %d posted visits were never acknowledged", r.Posted-r.Acknowledged, r.Posted)
	}
	if rows := c.CountRows(); rows != r.Acknowledged {
		t.Errorf("visits table has %d rows, want the %d acknowledged visits", rows, r.Acknowledged)
	}
	t.Logf("drain and rejoin took %s after the kill", time.Since(killedAt).Round(time.Millisecond))
}

// clusterKillWaitingInserts returns how many INSERTs into visits wait for
// a lock, or -1 when the database is unreachable.
func clusterKillWaitingInserts(ctx context.Context, c *faulttest.ApplianceCluster) int {
	var waiting int
	err := c.Pool.QueryRow(ctx, `
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO visits%'`).Scan(&waiting)
	if err != nil {
		return -1
	}
	return waiting
}

// clusterKillFinished returns the visits each node's status page counts as
// committed or duplicate since the node started, with -1 for the killed
// node and for a page that does not load.
func clusterKillFinished(c *faulttest.ApplianceCluster, killed int) []int64 {
	finished := make([]int64, len(c.Nodes))
	for i := range c.Nodes {
		finished[i] = -1
		if i == killed {
			continue
		}
		if st, err := c.NodeStatus(i); err == nil {
			finished[i] = st.Finished()
		}
	}
	return finished
}

// clusterKillRejoinAppliance waits until the on-prem stream and the
// committer consumer report the restarted node's replicas current.
func clusterKillRejoinAppliance(t *testing.T, c *faulttest.ApplianceCluster, node int) {
	t.Helper()
	name := c.Nodes[node].Name
	var stream, consumer faulttest.Replicas
	took := c.WaitFor(name+"'s replicas are current", clusterKillRejoinTimeout, func() bool {
		var err error
		stream, consumer, err = c.CommitterReplicas(node)
		return err == nil && stream.Current(name) && consumer.Current(name) &&
			len(stream.Peers) == len(c.Nodes)-1 && len(consumer.Peers) == len(c.Nodes)-1
	})
	t.Logf("%s's replicas current %s after its restart: stream %s; consumer %s", name, took.Round(time.Millisecond), stream, consumer)
}

// clusterKillContext returns a context that ends after clusterKillTimeout.
func clusterKillContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterKillTimeout)
	t.Cleanup(cancel)
	return ctx
}

// clusterKillVisits returns n new visits drawn from a generator seeded by
// seed.
func clusterKillVisits(seed uint64, n int) []faulttest.Visit {
	return faulttest.NewVisits(rand.New(rand.NewPCG(seed, uint64(n))), n)
}

// clusterKillCheckStatus checks the status pages of the two running nodes
// while node killed is down. Each names the killed node's lost replica in a
// warning that does not stop the flow. Each shows the site as linked, also
// the node without the leafnode link.
func clusterKillCheckStatus(t *testing.T, c *faulttest.GatewayCluster, linked, killed int) {
	t.Helper()
	name := c.Nodes[killed].Name
	for i := range c.Nodes {
		if i == killed {
			continue
		}
		var st faulttest.GatewayNodeStatus
		c.WaitFor(c.Nodes[i].Name+"'s status page names the lost replica", clusterKillRejoinTimeout, func() bool {
			var err error
			st, err = c.NodeStatus(i)
			return err == nil && slices.Contains(st.Stream.ReplicasLost, name)
		})
		if !st.HasWarning(health.CodeReplicasLost) {
			t.Errorf("%s's verdict %q has no %s warning while %s is down", c.Nodes[i].Name, st.Verdict.Summary, health.CodeReplicasLost, name)
		}
		if st.Verdict.State != health.Degraded {
			t.Errorf("%s's verdict is %q with one of three nodes down, want %q", c.Nodes[i].Name, st.Verdict.State, health.Degraded)
		}
		if !st.SiteLinked || st.HasWarning(health.CodeNoAppliance) {
			t.Errorf("%s (leafnode link on %s) shows the site as not linked: %q", c.Nodes[i].Name, c.Nodes[linked].Name, st.Verdict.Summary)
		}
	}
}
