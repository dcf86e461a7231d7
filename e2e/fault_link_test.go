package e2e

import (
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/faulttest"
)

// faultLinkCut cuts the leafnode link for faultOutage while clients post,
// then restores it. Phones keep posting to the gateway, and the appliance
// catches up once the link is back.
func faultLinkCut(t *testing.T, bins faulttest.Binaries) {
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	poster := sys.NewPoster(faultWorkers)
	poster.Rate = faultRate

	burst := poster.Start(ctx, faultVisits(41, faultRate*int(faultOutage/time.Second+10)))
	waitFaultAcknowledged(t, poster, 3*faultRate)
	sys.Link.Cut()
	// Visits sourced just before the cut are committed within a second.
	time.Sleep(time.Second)
	rowsAtCut := sys.CountRows()
	time.Sleep(faultOutage - time.Second)
	if rows := sys.CountRows(); rows != rowsAtCut {
		t.Errorf("%d rows at the end of the cut, %d at its start: visits crossed a cut link", rows, rowsAtCut)
	}
	sys.Link.Restore()
	restoredAt := time.Now()
	faulttest.WaitFor(t, "the first visit crosses the restored link", faultDrainTimeout, func() bool {
		return sys.CountRows() > rowsAtCut
	})
	t.Logf("link cut for %s; first visit stored %s after the restore",
		faultOutage, time.Since(restoredAt).Round(time.Millisecond))
	burst.Wait()

	finishFault(t, sys, poster)
}

// faultLinkFlapping cuts and restores the leafnode link every 2 s for
// faultFlapping while clients post.
func faultLinkFlapping(t *testing.T, bins faulttest.Binaries) {
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	poster := sys.NewPoster(faultWorkers)
	poster.Rate = faultRate

	burst := poster.Start(ctx, faultVisits(42, faultRate*int(faultFlapping/time.Second+5)))
	waitFaultAcknowledged(t, poster, 2*faultRate)
	cuts := sys.Link.Flap(ctx, 2*time.Second, faultFlapping)
	t.Logf("link cut %d times in %s", cuts, faultFlapping)
	burst.Wait()

	took := finishFault(t, sys, poster)
	t.Logf("last visit stored %s after the burst ended", took.Round(time.Millisecond))
}
