package e2e

import (
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/faulttest"
	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// BenchmarkCluster runs the real visitrelay-gateway binary as three child
// processes in one NATS cluster, with the cloud VISITS stream replicated
// on every node. One visitrelay-appliance process has a leafnode remote
// that lists every node. The load goes to the nodes in turn, as a load
// balancer in front of them would spread it. In this order:
//
//   - spike: the customer's spike of 30 visits/s for 60 s (BENCH_SPIKE),
//     its accept and post-to-stored latencies, and the highest peak memory
//     of the three gateway nodes meanwhile;
//   - saturation: see benchSaturation, with the appliance stopped. The
//     engine's rate is measured through the first node, on a stream
//     replicated like VISITS.
func BenchmarkCluster(b *testing.B) {
	spike := benchEnvDuration(b, benchSpikeEnv, time.Minute)
	step := benchEnvDuration(b, benchStepEnv, 5*time.Second)
	bins := faulttest.Build(b)
	c := faulttest.StartGatewayCluster(b, bins, faulttest.ClusterOptions{DatabaseURL: pgtest.NewDatabase(b)})
	logger := benchLogger().With("nodes", len(c.Nodes))
	benchPrintVersions(b, c.Pool)
	urls := make([]string, len(c.Nodes))
	for i, node := range c.Nodes {
		urls[i] = node.URL
	}

	b.Run("spike", func(b *testing.B) {
		load := newBenchLoad(b, urls, benchFaultAccounts())
		for b.Loop() {
			for _, node := range c.Nodes {
				if err := node.Process.ResetPeakRSS(); err != nil {
					b.Fatal(err)
				}
			}
			logger.Info("spike started", "visits_per_second", benchSpikeRate, "duration", spike)
			run := benchAttack(load, benchSpikeRate, spike)
			benchReportSpike(b, c.Pool, run)

			peak := benchClusterPeakRSS(b, c, logger)
			b.ReportMetric(benchMebibytes(peak), "gateway-spike-peak-rss-MiB")
		}
	})

	b.Run("saturation", func(b *testing.B) {
		if err := c.Appliance.Stop(); err != nil {
			b.Fatal(err)
		}
		load := newBenchLoad(b, urls, benchFaultAccounts())
		for b.Loop() {
			benchSaturation(b, load, c.Nodes[0].NATSURL, step, logger)
		}
	})
}

// benchClusterPeakRSS logs the peak resident set size of each gateway node
// and returns the highest, in bytes.
func benchClusterPeakRSS(b *testing.B, c *faulttest.GatewayCluster, logger *slog.Logger) int64 {
	b.Helper()
	var highest int64
	for _, node := range c.Nodes {
		m, err := node.Process.Memory()
		if err != nil {
			b.Fatal(err)
		}
		logger.Info("gateway node peak memory during the spike", "node", node.Name, "peak_rss_mib", math.Round(benchMebibytes(m.PeakRSS)*10)/10)
		highest = max(highest, m.PeakRSS)
	}
	return highest
}
