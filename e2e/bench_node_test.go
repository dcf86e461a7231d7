package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/faulttest"
	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// benchIdleSettle is how long both processes idle after their start before
// their idle memory is read.
const benchIdleSettle = 5 * time.Second

// BenchmarkOneNode runs the real visitrelay-gateway and visitrelay-appliance
// binaries as child processes, one node each, linked over loopback, and
// measures in three parts, in this order:
//
//   - start: each binary's start-up time, from starting the process until
//     its /readyz returns 200, with the state of an earlier run on disk,
//     and each one's memory after benchIdleSettle of idling;
//   - spike: the customer's spike of 30 visits/s over real HTTP for 60 s
//     (BENCH_SPIKE), its accept and post-to-stored latencies, and each
//     binary's peak memory meanwhile;
//   - saturation: see benchSaturation, with the appliance stopped, so that
//     only the gateway and the load generator share the cores.
func BenchmarkOneNode(b *testing.B) {
	logger := benchLogger()
	spike := benchEnvDuration(b, benchSpikeEnv, time.Minute)
	step := benchEnvDuration(b, benchStepEnv, 5*time.Second)
	bins := faulttest.Build(b)
	sys := faulttest.Start(b, bins, faulttest.Options{DatabaseURL: pgtest.NewDatabase(b)})
	benchPrintVersions(b, sys.Pool)

	b.Run("start", func(b *testing.B) {
		for b.Loop() {
			benchStart(b, sys)
		}
	})

	b.Run("spike", func(b *testing.B) {
		load := newBenchLoad(b, []string{sys.URL}, benchFaultAccounts())
		for b.Loop() {
			for _, p := range []*faulttest.Process{sys.Gateway, sys.Appliance} {
				if err := p.ResetPeakRSS(); err != nil {
					b.Fatal(err)
				}
			}
			logger.Info("spike started", "nodes", 1, "visits_per_second", benchSpikeRate, "duration", spike)
			run := benchAttack(load, benchSpikeRate, spike)
			benchReportSpike(b, sys.Pool, run)

			gateway, appliance := benchMemory(b, sys)
			b.ReportMetric(benchMebibytes(gateway.PeakRSS), "gateway-spike-peak-rss-MiB")
			b.ReportMetric(benchMebibytes(appliance.PeakRSS), "appliance-spike-peak-rss-MiB")
		}
	})

	b.Run("saturation", func(b *testing.B) {
		sys.StopAppliance()
		load := newBenchLoad(b, []string{sys.URL}, benchFaultAccounts())
		for b.Loop() {
			benchSaturation(b, load, sys.GatewayNATSURL, step, logger.With("nodes", 1))
		}
	})
}

// benchStart restarts both binaries one after the other, reports each
// one's start-up time, waits until the leafnode link is up again and both
// have idled for benchIdleSettle, and reports their memory.
func benchStart(b *testing.B, sys *faulttest.System) {
	b.Helper()
	sys.StopAppliance()
	sys.StopGateway()
	gatewayReady := sys.StartGatewayTimed()
	applianceReady := sys.StartApplianceTimed()
	faulttest.WaitFor(b, "the appliance's leafnode link is up", time.Minute, func() bool {
		return strings.Contains(benchGet(sys.ApplianceStatusURL()+"/readyz"), "leaf link up")
	})
	time.Sleep(benchIdleSettle)
	gateway, appliance := benchMemory(b, sys)

	b.ReportMetric(benchMilliseconds(gatewayReady), "gateway-ready-ms")
	b.ReportMetric(benchMilliseconds(applianceReady), "appliance-ready-ms")
	b.ReportMetric(benchMebibytes(gateway.RSS), "gateway-idle-rss-MiB")
	b.ReportMetric(benchMebibytes(appliance.RSS), "appliance-idle-rss-MiB")
	b.ReportMetric(benchMebibytes(gateway.PeakRSS), "gateway-start-peak-rss-MiB")
	b.ReportMetric(benchMebibytes(appliance.PeakRSS), "appliance-start-peak-rss-MiB")
}

// benchMemory reads the memory of the gateway and the appliance.
func benchMemory(b *testing.B, sys *faulttest.System) (gateway, appliance faulttest.Memory) {
	b.Helper()
	gateway, err := sys.Gateway.Memory()
	if err != nil {
		b.Fatal(err)
	}
	appliance, err = sys.Appliance.Memory()
	if err != nil {
		b.Fatal(err)
	}
	return gateway, appliance
}

// benchGet returns the body of a GET of url, or "" on any error.
func benchGet(url string) string {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
