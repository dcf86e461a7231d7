package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/faulttest"
)

// faultGatewayKilled kills the gateway with SIGKILL while clients post, and
// restarts it on the same ports and store. Posts in flight fail and are
// retried with the same visitId.
func faultGatewayKilled(t *testing.T, bins faulttest.Binaries) {
	const total = 600
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	poster := sys.NewPoster(faultWorkers)
	poster.Rate = 100

	burst := poster.Start(ctx, faultVisits(1, total))
	waitFaultAcknowledged(t, poster, total/3)
	sys.KillGateway()
	killedAt := time.Now()
	t.Logf("gateway killed after %d acknowledged visits", poster.Ledger.Acknowledged())
	time.Sleep(2 * time.Second)
	sys.StartGateway()
	t.Logf("gateway ready again %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	burst.Wait()

	took := finishFault(t, sys, poster)
	t.Logf("last visit stored %s after the burst ended", took.Round(time.Millisecond))
}

// faultApplianceKilled kills the appliance with SIGKILL twice: once while it
// works through a backlog in batches, and once while a batch transaction
// is provably open, its INSERT waiting for a table lock that the test
// holds.
func faultApplianceKilled(t *testing.T, bins faulttest.Binaries) {
	backlog := faulttest.Pick(3000, 6000)
	const locked = 300
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	poster := sys.NewPoster(faultWorkers)

	sys.StopAppliance()
	poster.Run(ctx, faultVisits(2, backlog))
	sys.StartAppliance()
	rows := 0
	faulttest.WaitFor(t, "the committer works through the backlog", faultDrainTimeout, func() bool {
		rows = sys.CountRows()
		return rows >= 100
	})
	sys.KillAppliance()
	t.Logf("appliance killed with %d of %d visits stored", rows, backlog)
	if rows >= backlog {
		t.Fatalf("all %d visits were stored before the kill; raise the backlog", backlog)
	}
	sys.StartAppliance()
	sys.WaitStored(poster.Ledger, faultDrainTimeout)

	// A transaction that waits for the lock is open inside commitVisits,
	// between its BEGIN and its COMMIT.
	tx, err := sys.Pool.Begin(ctx)
	if err != nil {
		t.Fatalf("begin lock transaction: %v", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "LOCK TABLE visits IN EXCLUSIVE MODE"); err != nil {
		t.Fatalf("lock visits: %v", err)
	}
	poster.Run(ctx, faultVisits(3, locked))
	faulttest.WaitFor(t, "a committer INSERT waits for the lock", time.Minute, func() bool {
		var waiting int
		err := sys.Pool.QueryRow(ctx, `
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO visits%'`).Scan(&waiting)
		return err == nil && waiting > 0
	})
	sys.KillAppliance()
	t.Logf("appliance killed while its batch transaction waited for the lock")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("release the lock: %v", err)
	}
	sys.StartAppliance()

	finishFault(t, sys, poster)
}

// faultApplianceBacklog keeps the appliance stopped while visits accumulate
// in the cloud, then starts it and waits until it has drained them.
func faultApplianceBacklog(t *testing.T, bins faulttest.Binaries) {
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	poster := sys.NewPoster(faultWorkers)

	sys.StopAppliance()
	start := time.Now()
	poster.Run(ctx, faultVisits(5, faultBacklog))
	t.Logf("%d visits posted in %s with the appliance down", faultBacklog, time.Since(start).Round(time.Millisecond))
	if got := sys.CloudStreamInfo().State.Msgs; got != uint64(faultBacklog) {
		t.Errorf("cloud stream holds %d visits, want %d", got, faultBacklog)
	}

	sys.StartAppliance()
	drain := sys.WaitStored(poster.Ledger, faultDrainTimeout)
	t.Logf("backlog of %d visits stored %s after the appliance started (%.0f visits/s)",
		faultBacklog, drain.Round(time.Millisecond), float64(faultBacklog)/drain.Seconds())
	finishFault(t, sys, poster)
}

// faultApplianceRestartedOffline lets the committer commit and ack
// everything, cuts the link, restarts the appliance, and posts 50 visits
// while it cannot reach the cloud. All 50 must arrive once the link is back.
func faultApplianceRestartedOffline(t *testing.T, bins faulttest.Binaries) {
	faultRestartOffline(t, bins, false)
}

// faultApplianceRestartedPurged is faultApplianceRestartedOffline with the
// site stream emptied before the restart, as when the tail's MaxAge has
// removed every committed visit. The source must resume where it stopped.
func faultApplianceRestartedPurged(t *testing.T, bins faulttest.Binaries) {
	faultRestartOffline(t, bins, true)
}

func faultRestartOffline(t *testing.T, bins faulttest.Binaries, purge bool) {
	const before, offline = 100, 50
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	poster := sys.NewPoster(faultWorkers)

	poster.Run(ctx, faultVisits(6, before))
	sys.WaitStored(poster.Ledger, faultDrainTimeout)
	faulttest.WaitFor(t, "the committer has acked every visit", time.Minute, func() bool {
		state, err := sys.SiteState()
		return err == nil && state.Pending == 0 && state.AckPending == 0
	})

	if purge {
		sys.PurgeSiteStream()
	}

	sys.Link.Cut()
	sys.StopAppliance()
	sys.StartAppliance()
	poster.Run(ctx, faultVisits(7, offline))
	time.Sleep(2 * time.Second)
	if rows := sys.CountRows(); rows != before {
		t.Errorf("%d rows while the link is cut, want the %d from before", rows, before)
	}

	sys.Link.Restore()
	took := finishFault(t, sys, poster)
	t.Logf("visits posted offline stored %s after the link was restored", took.Round(time.Millisecond))
	if !purge {
		return
	}
	state, err := sys.SiteState()
	if err != nil {
		t.Fatalf("read the appliance's stream: %v", err)
	}
	// The old visits sourced again would be absorbed as duplicates, so they
	// are logged, not failed.
	t.Logf("after the purge the site stream holds %d messages, %d of them sourced again", state.Messages, int(state.Messages)-offline)
}
