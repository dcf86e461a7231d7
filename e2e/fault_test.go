package e2e

import (
	"context"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/faulttest"
	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// Sizes of the fault scenarios. The long variants, which `make test-faults`
// selects with VISITRELAY_FAULT_LONG=1, use the outage lengths and the
// backlog of the delivery guarantees' specification.
var (
	// faultOutage is how long PostgreSQL stays down, a connection hangs or
	// the leafnode link stays cut.
	faultOutage = faulttest.Pick(15*time.Second, 60*time.Second)
	// faultFlapping is how long the leafnode link flaps.
	faultFlapping = faulttest.Pick(20*time.Second, 60*time.Second)
	// faultBacklog is how many visits accumulate in the cloud while the
	// appliance is down.
	faultBacklog = faulttest.Pick(2000, 10000)
	// faultScenarioTimeout bounds each scenario's posting, so that it stops
	// by itself.
	faultScenarioTimeout = faulttest.Pick(6*time.Minute, 15*time.Minute)
	// faultDrainTimeout bounds the wait until every acknowledged visit is
	// stored. After a link cut or a gateway restart the appliance's source
	// resumes after up to 40 s (nats-server v2.15.3 retries a stale source
	// after a 10 s health check and waits 30 s for an unanswered request).
	faultDrainTimeout = faulttest.Pick(3*time.Minute, 6*time.Minute)
)

// faultWorkers is the number of concurrent clients that post visits.
const faultWorkers = 8

// TestFault runs the fault matrix. Each scenario breaks one part of a
// running gateway, appliance and PostgreSQL while clients post visits. It
// then checks that every acknowledged visit is stored exactly once with the
// posted content, with no dead letter and no manual step.
func TestFault(t *testing.T) {
	bins := faulttest.Build(t)
	scenarios := []struct {
		name string
		run  func(t *testing.T, bins faulttest.Binaries)
	}{
		{"gateway killed mid burst", faultGatewayKilled},
		{"appliance killed mid commit", faultApplianceKilled},
		{"database stopped", faultDatabaseStopped},
		{"database connection hangs", faultDatabaseHangs},
		{"link cut", faultLinkCut},
		{"link flapping", faultLinkFlapping},
		{"appliance down with backlog", faultApplianceBacklog},
		{"appliance restarted while link down", faultApplianceRestartedOffline},
		{"appliance restarted with purged stream", faultApplianceRestartedPurged},
		{"retry storm", faultRetryStorm},
		{"appliance store full", faultApplianceStoreFull},
		{"cloud buffer full", faultCloudBufferFull},
		{"duplicate window forgotten", faultDuplicateWindowForgotten},
		{"phone clock off", faultPhoneClockOff},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			// Most of a scenario is waiting for an outage to pass or a
			// source to resume, so scenarios share the CPUs that -parallel
			// allows.
			t.Parallel()
			s.run(t, bins)
		})
	}
}

// startFaultSystem starts a gateway and an appliance on a fresh database of
// the shared PostgreSQL cluster.
func startFaultSystem(t *testing.T, bins faulttest.Binaries, o faulttest.Options) *faulttest.System {
	t.Helper()
	if o.DatabaseURL == "" {
		o.DatabaseURL = pgtest.NewDatabase(t)
	}
	return faulttest.Start(t, bins, o)
}

// faultContext returns a context that ends after faultScenarioTimeout.
func faultContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultScenarioTimeout)
	t.Cleanup(cancel)
	return ctx
}

// faultVisits returns n new visits drawn from a generator seeded by seed.
func faultVisits(seed uint64, n int) []faulttest.Visit {
	return faulttest.NewVisits(rand.New(rand.NewPCG(seed, uint64(n))), n)
}

// waitFaultAcknowledged waits until the poster has n acknowledged visits.
func waitFaultAcknowledged(t *testing.T, p *faulttest.Poster, n int) {
	t.Helper()
	faulttest.WaitFor(t, "enough visits are acknowledged", faultScenarioTimeout, func() bool {
		return p.Ledger.Acknowledged() >= n
	})
}

// finishFault waits until every acknowledged visit is stored, checks that
// there is no dead letter, compares the database with the poster's ledger,
// and fails the test unless every posted visit was acknowledged. It returns
// how long the wait for the last visit took.
func finishFault(t *testing.T, sys *faulttest.System, p *faulttest.Poster) time.Duration {
	t.Helper()
	took := sys.WaitStored(p.Ledger, faultDrainTimeout)
	sys.CheckNoDeadLetters()
	r := sys.Check(p.Ledger)
	if r.Acknowledged != r.Posted {
		t.Errorf("%d of %d posted visits were never acknowledged", r.Posted-r.Acknowledged, r.Posted)
	}
	return took
}

// faultWithHost returns dsn with its host and port replaced by address.
func faultWithHost(t *testing.T, dsn, address string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	u.Host = address
	return u.String()
}
