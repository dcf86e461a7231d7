package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// benchClusterNodes is the size of the gateway cluster.
const benchClusterNodes = 3

// BenchmarkCluster measures a three-node gateway cluster, with the cloud
// VISITS stream replicated on every node, and one appliance, all in this
// process. The load goes to the nodes in turn, as a load balancer in
// front of them would spread it. In this order:
//
//   - spike: the customer's spike of 30 visits/s for 60 s (BENCH_SPIKE),
//     its accept and post-to-stored latencies;
//   - saturation: see benchSaturation, with the appliance stopped. The
//     engine's rate is measured through the first node, on a stream
//     replicated like VISITS.
func BenchmarkCluster(b *testing.B) {
	logger := benchLogger().With("nodes", benchClusterNodes)
	spike := benchEnvDuration(b, benchSpikeEnv, time.Minute)
	step := benchEnvDuration(b, benchStepEnv, 5*time.Second)
	c := relaytest.StartCluster(b, benchClusterNodes)
	benchPrintVersions(b, c.Pool)
	urls := make([]string, benchClusterNodes)
	for i := range urls {
		urls[i] = c.URL(i)
	}

	b.Run("spike", func(b *testing.B) {
		load := newBenchLoad(b, urls, benchRelayAccounts())
		for b.Loop() {
			logger.Info("spike started", "visits_per_second", benchSpikeRate, "duration", spike)
			run := benchAttack(load, benchSpikeRate, spike)
			benchReportSpike(b, c.Pool, run)
		}
	})

	b.Run("saturation", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Appliance.Shutdown(ctx); err != nil {
			b.Fatalf("stop the appliance: %v", err)
		}
		load := newBenchLoad(b, urls, benchRelayAccounts())
		for b.Loop() {
			benchSaturation(b, load, c.Gateways[0].NATSURL(), step, logger)
		}
	})
}
