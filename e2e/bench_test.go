package e2e

// The end-to-end benchmarks. `make bench` runs them once each
// (-benchtime=1x), because one iteration is a whole load run, and turns the
// figures they report with b.ReportMetric into the table in
// docs/benchmarks.md. No figure is asserted.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/visitrelay/visitrelay/internal/faulttest"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// benchSpikeRate is the customer's spike: every salesman submits in the same
// second, 30 visits per second in total.
const benchSpikeRate = 30

// Limits of one load run.
const (
	// benchRequestTimeout bounds one post. A post slower than this counts as
	// failed, which also ends an overloaded saturation step soon.
	benchRequestTimeout = 2 * time.Second
	// benchMaxWorkers bounds the posts in flight. vegeta starts a worker
	// whenever all are busy, so an overloaded gateway would otherwise get
	// ever more connections.
	benchMaxWorkers = 512
	// benchStoredTimeout bounds the wait until every accepted visit of a
	// run is committed.
	benchStoredTimeout = 2 * time.Minute
)

// Environment variables that shorten the phases for a quick development
// run. `make bench` leaves them unset, which gives the durations that
// docs/benchmarks.md describes.
const (
	// benchSpikeEnv sets how long the 30 visits/s spike lasts (default 60s).
	benchSpikeEnv = "BENCH_SPIKE"
	// benchStepEnv sets how long each saturation phase lasts (default 5s).
	benchStepEnv = "BENCH_STEP"
)

// benchEnvDuration returns the duration in the environment variable name,
// or fallback when it is unset.
func benchEnvDuration(b *testing.B, name string, fallback time.Duration) time.Duration {
	b.Helper()
	raw := os.Getenv(name)
	if raw == "" {
		return fallback
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		b.Fatalf("invalid %s=%q: want a positive duration such as 10s", name, raw)
	}
	return d
}

// benchLogger logs the progress of the long phases to stderr, so that the
// benchmark output on stdout stays in the standard format.
func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// benchVersionsOnce makes benchPrintVersions print once per test binary.
var benchVersionsOnce sync.Once

// benchPrintVersions prints the PostgreSQL server version and fsync
// setting, and the embedded nats-server version, as configuration lines of
// the benchmark format ("key: value"), which the report reads. Run before
// the benchmark's result line, they apply to every result after them.
func benchPrintVersions(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	benchVersionsOnce.Do(func() {
		var version, fsync string
		err := pool.QueryRow(context.Background(), "SELECT current_setting('server_version'), current_setting('fsync')").
			Scan(&version, &fsync)
		if err != nil {
			b.Fatalf("read the PostgreSQL version: %v", err)
		}
		fmt.Printf("postgres: %s, fsync %s\n", version, fsync)
		fmt.Printf("nats-server: v%s\n", server.VERSION)
	})
}

// benchAccount is a salesman that the load logs in as.
type benchAccount struct {
	username, password, userID string
}

// benchFaultAccounts returns faulttest's fixture salesmen, which
// faulttest.Start and faulttest.StartGatewayCluster import.
func benchFaultAccounts() []benchAccount {
	accounts := make([]benchAccount, 0, len(faulttest.Users))
	for _, u := range faulttest.Users {
		accounts = append(accounts, benchAccount{username: u.Username, password: u.Password, userID: u.ID})
	}
	return accounts
}

// benchSession is a logged-in salesman.
type benchSession struct {
	userID, token string
}

// benchLoad makes the posts of a load run: each is a new valid visit of the
// next salesman, sent to the next gateway URL in turn, as a load balancer
// in front of a cluster would. It is safe for concurrent use.
type benchLoad struct {
	urls     []string
	sessions []benchSession

	mu   sync.Mutex
	rng  *rand.Rand
	next int
}

// newBenchLoad logs every account in at the first URL. A token is valid on
// every node of a cluster, because the nodes share the signing key.
func newBenchLoad(b *testing.B, urls []string, accounts []benchAccount) *benchLoad {
	b.Helper()
	load := &benchLoad{urls: urls, rng: rand.New(rand.NewPCG(1, 2))}
	for _, a := range accounts {
		resp, err := relaytest.Send(urls[0], http.MethodPost, "/api/v1/login", "",
			map[string]string{"username": a.username, "password": a.password})
		if err != nil {
			b.Fatalf("log in as %s: %v", a.username, err)
		}
		if resp.Status != http.StatusOK {
			b.Fatalf("log in as %s: status %d: %s", a.username, resp.Status, resp.Body)
		}
		var body struct{ Token string }
		if err := json.Unmarshal(resp.Body, &body); err != nil || body.Token == "" {
			b.Fatalf("log in as %s: no token in %s", a.username, resp.Body)
		}
		load.sessions = append(load.sessions, benchSession{userID: a.userID, token: body.Token})
	}
	return load
}

// target fills t with the next post. It is a vegeta.Targeter.
func (l *benchLoad) target(t *vegeta.Target) error {
	l.mu.Lock()
	session := l.sessions[l.next%len(l.sessions)]
	url := l.urls[l.next%len(l.urls)]
	l.next++
	v := faulttest.NewVisit(l.rng, session.userID, time.Now().Add(-time.Duration(l.rng.IntN(3600))*time.Second))
	l.mu.Unlock()

	t.Method = http.MethodPost
	t.URL = url + "/api/v1/visits"
	t.Body = v.JSON()
	t.Header = http.Header{
		"Content-Type":  []string{"application/json"},
		"Authorization": []string{"Bearer " + session.token},
	}
	return nil
}

// benchRun is the outcome of posting at a constant rate.
type benchRun struct {
	// rate is the offered rate in visits per second, and duration how long
	// new posts were started.
	rate     float64
	duration time.Duration
	// sent counts the posts started, and accepted those that got a 201.
	sent, accepted int
	// firstFailure describes the first post that did not get a 201.
	firstFailure string
	// latencies are those of the accepted posts, sorted: from the start of
	// the request to the end of the response.
	latencies []time.Duration
	// visitIDs are the ids of the accepted visits.
	visitIDs []string
}

// failed returns the number of posts that did not get a 201.
func (r benchRun) failed() int { return r.sent - r.accepted }

// acceptedRate returns the accepted posts per second of the run.
func (r benchRun) acceptedRate() float64 { return float64(r.accepted) / r.duration.Seconds() }

// latency returns the nearest-rank percentile p (0 to 100) of the accepted
// posts' latencies.
func (r benchRun) latency(p float64) time.Duration { return benchPercentile(r.latencies, p) }

// benchAttack posts new visits at rate per second for d with vegeta, an
// open-loop load generator. A post starts on schedule whether or not the
// earlier ones got their responses, so a slow gateway cannot slow the load
// down and hide its own latency.
func benchAttack(load *benchLoad, rate float64, d time.Duration) benchRun {
	attacker := vegeta.NewAttacker(
		vegeta.Timeout(benchRequestTimeout),
		vegeta.MaxWorkers(benchMaxWorkers),
		vegeta.KeepAlive(true),
	)
	pacer := vegeta.ConstantPacer{Freq: int(math.Round(rate)), Per: time.Second}
	return benchCollect(attacker.Attack(load.target, pacer, d, "visits"), rate, d)
}

// benchCollect reads the results of an attack at rate per second (0 for as
// fast as the workers go) that started posts for d. It keeps the latencies
// and visit ids of the 201 responses.
func benchCollect(results <-chan *vegeta.Result, rate float64, d time.Duration) benchRun {
	run := benchRun{rate: rate, duration: d}
	for result := range results {
		run.sent++
		if result.Code != http.StatusCreated {
			if run.firstFailure == "" {
				run.firstFailure = fmt.Sprintf("status %d: %s%s", result.Code, result.Error, result.Body)
			}
			continue
		}
		var ack struct{ VisitID string }
		if err := json.Unmarshal(result.Body, &ack); err != nil || ack.VisitID == "" {
			if run.firstFailure == "" {
				run.firstFailure = fmt.Sprintf("status 201 without a visitId: %s", result.Body)
			}
			continue
		}
		run.accepted++
		run.latencies = append(run.latencies, result.Latency)
		run.visitIDs = append(run.visitIDs, ack.VisitID)
	}
	slices.Sort(run.latencies)
	return run
}

// benchReportSpike reports the accept latencies of a spike run and the
// post-to-stored latencies read from the database.
func benchReportSpike(b *testing.B, pool *pgxpool.Pool, run benchRun) {
	b.Helper()
	if run.accepted == 0 {
		b.Fatalf("spike: no visit of %d accepted; first failure: %s", run.sent, run.firstFailure)
	}
	if run.failed() > 0 {
		b.Logf("spike: %d of %d posts failed; first failure: %s", run.failed(), run.sent, run.firstFailure)
	}
	stored := benchStoredLatencies(b, pool, run.visitIDs)

	b.ReportMetric(run.rate, "offered-visits/s")
	b.ReportMetric(run.duration.Seconds(), "spike-s")
	b.ReportMetric(float64(run.accepted), "visits")
	b.ReportMetric(float64(run.failed()), "failed-posts")
	b.ReportMetric(benchMilliseconds(run.latency(50)), "accept-p50-ms")
	b.ReportMetric(benchMilliseconds(run.latency(99)), "accept-p99-ms")
	b.ReportMetric(benchMilliseconds(run.latency(99.9)), "accept-p99.9-ms")
	b.ReportMetric(benchMilliseconds(run.latency(100)), "accept-max-ms")
	b.ReportMetric(benchMilliseconds(benchPercentile(stored, 50)), "stored-p50-ms")
	b.ReportMetric(benchMilliseconds(benchPercentile(stored, 99)), "stored-p99-ms")
}

// benchStoredLatencies waits until the visits with ids are committed and
// returns committed_at - accepted_at of each, sorted. accepted_at is the
// gateway's clock just before its publish, and committed_at the start of
// the appliance's commit transaction. Both sides read this machine's clock
// here.
func benchStoredLatencies(b *testing.B, pool *pgxpool.Pool, ids []string) []time.Duration {
	b.Helper()
	ctx := context.Background()
	faulttest.WaitFor(b, fmt.Sprintf("the %d accepted visits are committed", len(ids)), benchStoredTimeout, func() bool {
		var n int
		err := pool.QueryRow(ctx, "SELECT count(*) FROM visits WHERE visit_id = ANY($1::uuid[])", ids).Scan(&n)
		return err == nil && n == len(ids)
	})

	rows, err := pool.Query(ctx, `
SELECT (extract(epoch FROM committed_at - accepted_at) * 1000000)::bigint
FROM visits WHERE visit_id = ANY($1::uuid[])`, ids)
	if err != nil {
		b.Fatalf("read post-to-stored latencies: %v", err)
	}
	defer rows.Close()
	var latencies []time.Duration
	for rows.Next() {
		var micros int64
		if err := rows.Scan(&micros); err != nil {
			b.Fatalf("read post-to-stored latency: %v", err)
		}
		latencies = append(latencies, time.Duration(micros)*time.Microsecond)
	}
	if err := rows.Err(); err != nil {
		b.Fatalf("read post-to-stored latencies: %v", err)
	}
	slices.Sort(latencies)
	return latencies
}

// benchPercentile returns the nearest-rank percentile p (0 to 100) of
// sorted: the smallest value with at least p percent of values at or below
// it. It returns 0 for no values.
func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func benchMilliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchMebibytes converts bytes to MiB.
func benchMebibytes(n int64) float64 { return float64(n) / (1 << 20) }
