package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/faulttest"
	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// faultRate paces the bursts that must outlast an outage, in visits per
// second.
const faultRate = 20

// faultDatabaseStopped stops PostgreSQL for faultOutage while clients post,
// and starts it again. The gateway keeps accepting, the committer waits
// without dead-lettering anything, and resumes by itself.
func faultDatabaseStopped(t *testing.T, bins faulttest.Binaries) {
	cluster := pgtest.NewCluster(t)
	ctx := faultContext(t)
	if err := pgtest.CreateDatabase(ctx, cluster.AdminDSN(), "visitrelay"); err != nil {
		t.Fatal(err)
	}
	sys := startFaultSystem(t, bins, faulttest.Options{DatabaseURL: cluster.DSN("visitrelay")})
	poster := sys.NewPoster(faultWorkers)
	poster.Rate = faultRate

	burst := poster.Start(ctx, faultVisits(31, faultRate*int(faultOutage/time.Second+10)))
	waitFaultAcknowledged(t, poster, 3*faultRate)
	if err := cluster.Stop(ctx); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
	stoppedAt := time.Now()
	acknowledgedBefore := poster.Ledger.Acknowledged()
	time.Sleep(faultOutage)
	if got := poster.Ledger.Acknowledged(); got <= acknowledgedBefore {
		t.Errorf("no visit acknowledged while PostgreSQL was down: %d before and after", got)
	}
	if err := cluster.Start(ctx); err != nil {
		t.Fatalf("start PostgreSQL again: %v", err)
	}
	t.Logf("PostgreSQL down for %s", time.Since(stoppedAt).Round(time.Millisecond))
	burst.Wait()

	finishFault(t, sys, poster)
}

// faultDatabaseHangs puts a proxy between the appliance and PostgreSQL and
// makes it stop forwarding without closing anything: first on the open
// connections only, as a firewall that dropped their state does, and then
// on every connection, old and new. The committer's per-transaction timeout
// must give up on the hung connections; in the first case it must commit
// through new connections before the hang ends.
func faultDatabaseHangs(t *testing.T, bins faulttest.Binaries) {
	// A cluster of the test's own is on 127.0.0.1 even when
	// TEST_DATABASE_URL names another server.
	cluster := pgtest.NewCluster(t)
	ctx := faultContext(t)
	if err := pgtest.CreateDatabase(ctx, cluster.AdminDSN(), "visitrelay"); err != nil {
		t.Fatal(err)
	}
	direct := cluster.DSN("visitrelay")
	proxy := faulttest.NewProxy(t, "127.0.0.1:"+strconv.Itoa(cluster.Port()))
	sys := startFaultSystem(t, bins, faulttest.Options{
		DatabaseURL:      faultWithHost(t, direct, proxy.Addr()),
		CheckDatabaseURL: direct,
	})
	poster := sys.NewPoster(faultWorkers)
	poster.Rate = faultRate

	burst := poster.Start(ctx, faultVisits(32, faultRate*int(2*faultOutage/time.Second+10)))
	waitFaultAcknowledged(t, poster, 3*faultRate)
	sys.WaitStored(poster.Ledger, faultDrainTimeout)

	proxy.HangOpen()
	hungAt := time.Now()
	rowsAtHang := sys.CountRows()
	recovered := faulttest.WaitFor(t, "the committer commits through a new connection", faultOutage+time.Minute, func() bool {
		return sys.CountRows() > rowsAtHang+faultRate
	})
	t.Logf("committer recovered from hung connections in %s", recovered.Round(time.Millisecond))
	time.Sleep(max(faultOutage-time.Since(hungAt), 0))
	proxy.Restore()

	proxy.Hang()
	time.Sleep(faultOutage)
	proxy.Restore()
	burst.Wait()

	took := finishFault(t, sys, poster)
	t.Logf("last visit stored %s after the burst ended", took.Round(time.Millisecond))
}
