package e2e

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/pgtest"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// outageLength is how long PostgreSQL stays down. It exceeds the committer's
// AckWait of 10s that relaytest sets, so a batch fetched before the outage
// would be redelivered unless the committer extends its ack deadline.
const outageLength = 12 * time.Second

func TestDatabaseOutageCommitsOnce(t *testing.T) {
	const before, during, after = 20, 50, 10
	cluster := pgtest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pgtest.CreateDatabase(ctx, cluster.AdminDSN(), "visitrelay"); err != nil {
		t.Fatal(err)
	}
	e := relaytest.StartWithDSN(t, cluster.DSN("visitrelay"))
	// Close spare connections before the harness stops the gateway, as
	// startEnv does.
	t.Cleanup(client.CloseIdleConnections)
	tokens := loginAll(e)
	rng := rand.New(rand.NewPCG(4, 50))

	first := newVisits(rng, before)
	postAll(t, e, tokens, first, 4)
	e.WaitVisits(before, commitTimeout)
	waitCommitted(t, e, before)

	if err := cluster.Stop(ctx); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
	// The gateway does not need the database: it keeps accepting visits.
	second := newVisits(rng, during)
	postAll(t, e, tokens, second, 10)
	e.WaitFor("the appliance stream holds every visit", commitTimeout, func() bool {
		return e.SiteStreamMessages() == before+during
	})
	time.Sleep(outageLength)
	if got := e.Appliance.Stats().DeadLetters; got != 0 {
		t.Errorf("the committer dead-lettered %d visits while the database was down, want 0", got)
	}
	if got := e.DeadLetterMessages(); got != 0 {
		t.Errorf("dead-letter stream has %d messages while the database is down, want 0", got)
	}
	if err := cluster.Start(ctx); err != nil {
		t.Fatalf("start PostgreSQL again: %v", err)
	}
	// The harness's own connections died with the server.
	e.Pool.Reset()

	// The committer resumes by itself; nothing restarts the appliance.
	e.WaitVisits(before+during, commitTimeout)
	third := newVisits(rng, after)
	postAll(t, e, tokens, third, 4)
	e.WaitVisits(before+during+after, commitTimeout)
	waitCommitted(t, e, before+during+after)

	checkStored(t, e, append(append(first, second...), third...))
	// No duplicates means no visit was redelivered while the database was
	// down: the committer kept extending the ack deadline of its batch.
	checkStats(t, e, before+during+after)
	if got := e.DeadLetterMessages(); got != 0 {
		t.Errorf("dead-letter stream has %d messages, want 0", got)
	}
}
