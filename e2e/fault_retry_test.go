package e2e

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/faulttest"
)

// faultRetryStorm posts every visit three times, each from its own
// connection: for a third of the visits all three posts at once, for a
// third two at once and one after, and for the rest one after another.
// Each visit must get 201 once and 200 otherwise, always with the same
// acceptedAt, and be stored once.
func faultRetryStorm(t *testing.T, bins faulttest.Binaries) {
	total := faulttest.Pick(150, 600)
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	poster := sys.NewPoster(0)
	poster.Fresh = true

	visits := faultVisits(71, total)
	post := func(v faulttest.Visit) {
		if _, err := poster.Post(ctx, poster.NewClient(), v); err != nil {
			t.Errorf("post visit %s: %v", v.VisitID, err)
		}
	}
	concurrent := make(chan struct{}, 3*faultWorkers)
	var wg sync.WaitGroup
	for i, v := range visits {
		concurrent <- struct{}{}
		wg.Go(func() {
			defer func() { <-concurrent }()
			var parallel sync.WaitGroup
			for range 3 - i%3 {
				parallel.Go(func() { post(v) })
			}
			parallel.Wait()
			for range i % 3 {
				post(v)
			}
		})
	}
	wg.Wait()

	created := poster.Ledger.Created()
	var wrong []string
	for _, v := range visits {
		if created[v.VisitID] != 1 {
			wrong = append(wrong, v.VisitID)
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d of %d visits did not get exactly one 201, such as %s", len(wrong), total, wrong[0])
	}
	if got := sys.CloudStreamInfo().State.Msgs; got != uint64(total) {
		t.Errorf("cloud stream holds %d messages, want one per visit, %d", got, total)
	}
	finishFault(t, sys, poster)
}

// faultDuplicateWindowForgotten retries visits after the cloud stream has
// forgotten their Nats-Msg-Id and the gateway has restarted. The gateway
// must find each visit by its subject and respond 200 with the first
// acceptedAt, and the database must keep one row per visit.
func faultDuplicateWindowForgotten(t *testing.T, bins faulttest.Binaries) {
	const total = 30
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	poster := sys.NewPoster(faultWorkers)
	visits := faultVisits(111, total)
	poster.Run(ctx, visits)
	sys.WaitStored(poster.Ledger, faultDrainTimeout)

	if !sys.CloudRemembers(visits[0]) {
		t.Fatalf("the cloud stream forgot visit %s before the duplicate window was shortened", visits[0].VisitID)
	}
	// Simulates the hour after which the stream drops message ids.
	sys.ShortenDuplicateWindow(time.Second)
	time.Sleep(2 * time.Second)
	sys.StopGateway()
	sys.StartGateway()
	for _, v := range visits {
		if sys.CloudRemembers(v) {
			t.Fatalf("the cloud stream still remembers visit %s after the restart", v.VisitID)
		}
	}
	if window := sys.CloudStreamInfo().Config.Duplicates; window != time.Hour {
		t.Errorf("duplicate window %s after the gateway's restart, want the gateway's 1h", window)
	}
	before := sys.CloudStreamInfo().State.Msgs

	// The retries go into the same ledger, which fails the test when an
	// acceptedAt differs from the first one.
	poster.Fresh = true
	var wg sync.WaitGroup
	for _, v := range visits {
		wg.Go(func() {
			ack, err := poster.Post(ctx, poster.NewClient(), v)
			if err != nil {
				t.Errorf("retry visit %s: %v", v.VisitID, err)
				return
			}
			if ack.Status != http.StatusOK {
				t.Errorf("retry of visit %s: status %d, want 200", v.VisitID, ack.Status)
			}
		})
	}
	wg.Wait()
	if after := sys.CloudStreamInfo().State.Msgs; after != before {
		t.Errorf("cloud stream grew from %d to %d messages on retries", before, after)
	}
	finishFault(t, sys, poster)
}

// faultPhoneClockOff posts visits whose dateTime is 10 minutes ahead of or
// behind the gateway's clock. Both are inside the 15-minute skew allowance,
// so both are accepted, and the row keeps the phone's time in visited_at
// and the gateway's in accepted_at. A dateTime 16 minutes ahead is the
// control: it must be rejected.
func faultPhoneClockOff(t *testing.T, bins faulttest.Binaries) {
	sys := startFaultSystem(t, bins, faulttest.Options{})
	ctx := faultContext(t)
	rng := rand.New(rand.NewPCG(12, 0))
	tests := []struct {
		name   string
		offset time.Duration
		want   int
	}{
		{"10 minutes ahead", 10 * time.Minute, http.StatusCreated},
		{"10 minutes behind", -10 * time.Minute, http.StatusCreated},
		{"16 minutes ahead", 16 * time.Minute, http.StatusBadRequest},
	}
	poster := sys.NewPoster(faultWorkers)
	// The control's rejections go into a ledger of their own, because
	// Check fails on every rejection it finds.
	control := sys.NewPoster(faultWorkers)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := poster
			if tt.want != http.StatusCreated {
				p = control
			}
			var visits []faulttest.Visit
			for i := range 3 * faultWorkers {
				user := faulttest.Users[i%len(faulttest.Users)].ID
				visits = append(visits, faulttest.NewVisit(rng, user, time.Now().Add(tt.offset)))
			}
			sent := time.Now()
			var wg sync.WaitGroup
			for _, v := range visits {
				wg.Go(func() {
					status, _, body, err := p.PostOnce(ctx, p.NewClient(), v)
					if err != nil || status != tt.want {
						t.Errorf("post visit %s dated %s: status %d (error %v), want %d: %s", v.VisitID, v.DateTime, status, err, tt.want, body)
					}
				})
			}
			wg.Wait()
			received := time.Now()
			if tt.want != http.StatusCreated {
				return
			}
			sys.WaitStored(p.Ledger, faultDrainTimeout)
			checkFaultClocks(t, sys, visits, sent, received)
		})
	}
	finishFault(t, sys, poster)
}

// checkFaultClocks fails the test unless each visit's row keeps the posted
// dateTime in visited_at and a gateway time between sent and received in
// accepted_at. The test and the gateway share this machine's clock.
func checkFaultClocks(t *testing.T, sys *faulttest.System, visits []faulttest.Visit, sent, received time.Time) {
	t.Helper()
	for _, v := range visits {
		var visitedAt, acceptedAt time.Time
		err := sys.Pool.QueryRow(context.Background(),
			"SELECT visited_at, accepted_at FROM visits WHERE visit_id = $1", v.VisitID).Scan(&visitedAt, &acceptedAt)
		if err != nil {
			t.Errorf("read row of visit %s: %v", v.VisitID, err)
			continue
		}
		posted, err := time.Parse(time.RFC3339Nano, v.DateTime)
		if err != nil {
			t.Fatalf("parse posted dateTime %q: %v", v.DateTime, err)
		}
		if !visitedAt.Equal(posted) {
			t.Errorf("visit %s: visited_at %s, want the phone's dateTime %s", v.VisitID, visitedAt.UTC(), posted.UTC())
		}
		earliest, latest := sent.Truncate(time.Microsecond), received.Add(time.Microsecond)
		if acceptedAt.Before(earliest) || acceptedAt.After(latest) {
			t.Errorf("visit %s: accepted_at %s, want the gateway's time between %s and %s",
				v.VisitID, acceptedAt.UTC(), sent.UTC(), received.UTC())
		}
	}
}
