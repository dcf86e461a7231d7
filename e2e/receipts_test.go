package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/streams"
)

// When the site's receipt stream cannot take the receipts of a commit, the
// batch comes back after a few seconds, not after the committer's AckWait,
// and the visits count as committed, not as duplicates.
func TestReceiptFailureRetriedSoon(t *testing.T) {
	e := startEnv(t)
	e.StopAppliance()
	e.ApplianceConfig().Committer.AckWait = 3 * time.Minute
	e.StartAppliance()
	js := receiptsTestSiteJetStream(t, filepath.Join(e.ApplianceConfig().StateDir, "nats.url"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := js.DeleteStream(ctx, streams.Receipts); err != nil {
		t.Fatalf("delete the site's receipt stream: %v", err)
	}

	tokens := loginAll(e)
	visits := newVisits(rand.New(rand.NewPCG(7, 70)), 5)
	postAll(t, e, tokens, visits, 1)
	e.WaitVisits(len(visits), commitTimeout)
	time.Sleep(time.Second)

	// The appliance created the stream at start with this configuration.
	if _, err := js.CreateStream(ctx, streams.SiteReceiptsConfig(30*24*time.Hour)); err != nil {
		t.Fatalf("create the site's receipt stream again: %v", err)
	}
	// 30 s is far below the AckWait of 3 min, which the batch would wait
	// for without the early retry.
	e.WaitFor("a receipt for every visit in the site's stream", 30*time.Second, func() bool {
		info, err := js.Stream(ctx, streams.Receipts)
		return err == nil && info.CachedInfo().State.Msgs >= uint64(len(visits))
	})

	stats := e.Appliance.Stats()
	if stats.Committed != int64(len(visits)) {
		t.Errorf("committed counter %d, want %d", stats.Committed, len(visits))
	}
	if stats.Duplicates != 0 {
		t.Errorf("duplicates counter %d, want 0: the redelivery after a failed receipt is not a duplicate", stats.Duplicates)
	}
	checkStored(t, e, visits)
}

// receiptsTestSiteJetStream connects to the appliance's NATS server through
// the client URL it writes to its state directory.
func receiptsTestSiteJetStream(t *testing.T, urlFile string) jetstream.JetStream {
	t.Helper()
	url, err := os.ReadFile(urlFile)
	if err != nil {
		t.Fatalf("read the appliance's NATS URL: %v", err)
	}
	nc, err := nats.Connect(strings.TrimSpace(string(url)))
	if err != nil {
		t.Fatalf("connect to the appliance's NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("open JetStream on the appliance: %v", err)
	}
	return js
}
