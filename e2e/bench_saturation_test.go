package e2e

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/visitrelay/visitrelay/internal/faulttest"
	"github.com/visitrelay/visitrelay/internal/streams"
)

// benchSaturationShares are the constant rates of the saturation steps, as
// shares of the closed-loop rate, in the order they run.
var benchSaturationShares = []float64{0.4, 0.55, 0.7, 0.85, 1.0, 1.15}

// The saturation search.
const (
	// benchSaturationClients is how many posts, or publishes, are in flight
	// at once in the closed-loop phases.
	benchSaturationClients = 32
	// benchSaturationP99 is the accept latency p99 that a rate must stay
	// under to count as sustained.
	benchSaturationP99 = 50 * time.Millisecond
	// benchSaturationPause separates two steps, so that the posts queued by
	// an overloaded step do not slow down the next one.
	benchSaturationPause = time.Second
	// benchEngineStream is the stream that the engine phase publishes to.
	benchEngineStream = "BENCH_ENGINE"
)

// benchSaturation measures and reports three figures of the gateway nodes
// that load posts to, whose NATS server natsURL is:
//
//   - engine-publish/s is the embedded JetStream's own durable publish
//     rate, from benchSaturationClients synchronous publishers to a stream
//     configured as the cloud VISITS stream, for one step.
//   - closed-loop-accept/s is the gateway's accept rate over HTTP from
//     benchSaturationClients clients, each posting as soon as the response
//     to its last post arrived, for one step.
//   - saturation-visits/s is the highest constant rate that the gateway
//     accepted in full with an accept p99 under benchSaturationP99, out of
//     steps of step each at the benchSaturationShares of the closed-loop
//     rate. saturation/engine is its ratio to the engine's rate.
//
// Every step runs, from the lowest rate up, so that one step spoiled by a
// stall, such as another process's disk writes, does not hide a higher
// rate that the gateway sustains. The log lists each step.
func benchSaturation(b *testing.B, load *benchLoad, natsURL string, step time.Duration, logger *slog.Logger) {
	b.Helper()
	engine := benchEngineRate(b, natsURL, step)
	logger.Info("engine publish rate measured", "publishes_per_second", int(engine))

	closed := benchAttackClosedLoop(load, step)
	if closed.accepted == 0 {
		b.Fatalf("closed-loop phase: no visit of %d accepted; first failure: %s", closed.sent, closed.firstFailure)
	}
	logger.Info("closed-loop accept rate measured", "visits_per_second", int(closed.acceptedRate()),
		"p99", closed.latency(99), "failed", closed.failed())

	var best benchRun
	topHeld := 0.0
	for i, share := range benchSaturationShares {
		time.Sleep(benchSaturationPause)
		rate := share * closed.acceptedRate()
		run := benchAttack(load, rate, step)
		sustained := benchSustained(run)
		logger.Info("saturation step", "offered_per_second", int(rate), "accepted_per_second", int(run.acceptedRate()),
			"p99", run.latency(99), "failed", run.failed(), "sustained", sustained)
		if sustained {
			best = run
		}
		if sustained && i == len(benchSaturationShares)-1 {
			topHeld = 1
		}
	}
	if best.accepted == 0 {
		b.Logf("saturation: no step kept the p99 under %s", benchSaturationP99)
	}

	b.ReportMetric(step.Seconds(), "step-s")
	b.ReportMetric(engine, "engine-publish/s")
	b.ReportMetric(closed.acceptedRate(), "closed-loop-accept/s")
	b.ReportMetric(benchMilliseconds(closed.latency(99)), "closed-loop-p99-ms")
	b.ReportMetric(best.acceptedRate(), "saturation-visits/s")
	b.ReportMetric(benchMilliseconds(best.latency(99)), "saturation-p99-ms")
	b.ReportMetric(best.acceptedRate()/engine, "saturation/engine")
	b.ReportMetric(topHeld, "saturation-top-step-held")
}

// benchSustained reports whether the gateway kept up with a constant-rate
// run: the load generator started at least 95% of the posts it was to
// start, which it does not when all benchMaxWorkers wait for responses,
// every post got a 201, and the p99 stayed under benchSaturationP99.
func benchSustained(run benchRun) bool {
	planned := run.rate * run.duration.Seconds()
	return float64(run.sent) >= 0.95*planned && run.failed() == 0 && run.latency(99) < benchSaturationP99
}

// benchAttackClosedLoop posts for d from benchSaturationClients clients,
// each posting its next visit as soon as the response to the last one
// arrived.
func benchAttackClosedLoop(load *benchLoad, d time.Duration) benchRun {
	attacker := vegeta.NewAttacker(
		vegeta.Timeout(benchRequestTimeout),
		vegeta.Workers(benchSaturationClients),
		vegeta.MaxWorkers(benchSaturationClients),
		vegeta.KeepAlive(true),
	)
	// A pacer of rate 0 lets each worker post without pause.
	return benchCollect(attacker.Attack(load.target, vegeta.ConstantPacer{}, d, "closed-loop"), 0, d)
}

// benchEngineRate returns the publishes per second that the JetStream
// server at natsURL acknowledged in d from benchSaturationClients
// publishers, each waiting for the ack of its last publish before the
// next. The stream copies the cloud VISITS stream's config (file storage,
// replicas, duplicate window), and each message is a visit's JSON with its
// visitId as Nats-Msg-Id, as the gateway publishes it. The server fsyncs
// before every ack, as it does for the gateway.
func benchEngineRate(b *testing.B, natsURL string, d time.Duration) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	nc, err := nats.Connect(natsURL, nats.Name("bench-engine"))
	if err != nil {
		b.Fatalf("connect to the gateway's NATS server: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatalf("open JetStream: %v", err)
	}
	visits, err := js.Stream(ctx, streams.Visits)
	if err != nil {
		b.Fatalf("read the config of stream %s: %v", streams.Visits, err)
	}
	cfg := visits.CachedInfo().Config
	cfg.Name, cfg.Description, cfg.Subjects = benchEngineStream, "benchmark of the engine's durable publish rate", []string{"bench.engine.>"}
	cfg.Sources, cfg.Mirror, cfg.RePublish = nil, nil, nil
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		b.Fatalf("create stream %s: %v", benchEngineStream, err)
	}
	defer func() {
		if err := js.DeleteStream(context.Background(), benchEngineStream); err != nil {
			b.Errorf("delete stream %s: %v", benchEngineStream, err)
		}
	}()

	rng := rand.New(rand.NewPCG(3, 4))
	payloads := make([][]byte, 64)
	for i := range payloads {
		payloads[i] = faulttest.NewVisit(rng, faulttest.Users[0].ID, time.Now()).JSON()
	}
	var acknowledged atomic.Int64
	var failures sync.Map // distinct error texts, for the message when none succeeded
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for client := range benchSaturationClients {
		wg.Go(func() {
			for i := client; time.Now().Before(deadline); i++ {
				id := uuid.NewString()
				_, err := js.Publish(ctx, "bench.engine."+id, payloads[i%len(payloads)], jetstream.WithMsgID(id))
				if err != nil {
					failures.LoadOrStore(err.Error(), true)
					continue
				}
				acknowledged.Add(1)
			}
		})
	}
	wg.Wait()
	if acknowledged.Load() == 0 {
		var errs []string
		failures.Range(func(key, _ any) bool { errs = append(errs, key.(string)); return true })
		b.Fatalf("engine phase: no publish acknowledged: %s", strings.Join(errs, "; "))
	}
	return float64(acknowledged.Load()) / d.Seconds()
}
