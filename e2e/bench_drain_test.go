package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/relaytest"
	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// benchBacklogEnv sets the number of visits in the backlog, 100,000 by
// default. A smaller backlog makes a quick development run.
const benchBacklogEnv = "BENCH_BACKLOG"

const (
	// benchDrainPoll is the pause between two checks of the drain's
	// progress. Each check counts the visits table, which takes the
	// database a few milliseconds at 100,000 rows, so a shorter pause would
	// slow down the drain it measures.
	benchDrainPoll = 250 * time.Millisecond
	// benchDrainTimeout bounds the drain.
	benchDrainTimeout = 20 * time.Minute
)

// BenchmarkBacklogDrain measures how fast the appliance commits a backlog
// waiting in the cloud, against a plain pgx batch insert of the same rows
// into the same database (100 visits per transaction, the committer's
// batch size). Gateway and appliance run in this process. The backlog is
// published to the cloud stream directly, not over HTTP, since only the
// drain is measured.
func BenchmarkBacklogDrain(b *testing.B) {
	n := 100000
	if raw := os.Getenv(benchBacklogEnv); raw != "" {
		v, err := strconv.Atoi(raw)
		if err != nil || v < 1 {
			b.Fatalf("invalid %s=%q: want a positive number of visits", benchBacklogEnv, raw)
		}
		n = v
	}
	logger := benchLogger().With("visits", n)
	e := relaytest.Start(b)
	benchPrintVersions(b, e.Pool)
	e.StopAppliance()
	envelopes := benchEnvelopes(n)

	for b.Loop() {
		plain := benchPlainInsert(b, e, envelopes)
		logger.Info("plain insert finished", "took", plain)
		if _, err := e.Pool.Exec(context.Background(), "TRUNCATE visits CASCADE"); err != nil {
			b.Fatalf("empty visits: %v", err)
		}

		published := time.Now()
		benchPublishBacklog(b, e, envelopes)
		logger.Info("backlog published to the cloud stream", "took", time.Since(published))
		start := time.Now()
		e.StartAppliance()
		// The on-prem stream's count shows whether sourcing or committing
		// limits the drain.
		sourced := benchPoll(b, "the backlog is sourced on-prem", start, func() bool {
			return e.Gateway.LeafConnected() && e.SiteStreamMessages() >= uint64(n)
		})
		drain := benchPoll(b, fmt.Sprintf("the database has %d visits", n), start, func() bool {
			return e.CountVisits() >= n
		})
		if got := e.CountVisits(); got != n {
			b.Fatalf("visits table has %d rows, want %d", got, n)
		}
		logger.Info("backlog drained", "sourced_after", sourced, "committed_after", drain)
		b.ReportMetric(float64(n)/sourced.Seconds(), "source-visits/s")

		plainRate := float64(n) / plain.Seconds()
		drainRate := float64(n) / drain.Seconds()
		b.ReportMetric(plainRate, "plain-insert-visits/s")
		b.ReportMetric(drainRate, "drain-visits/s")
		b.ReportMetric(drainRate/plainRate, "drain/plain")
		b.ReportMetric(float64(n), "visits")
	}
}

// benchPoll polls cond every benchDrainPoll until it holds and returns the
// time from start until then. It fails the benchmark after benchDrainTimeout.
func benchPoll(b *testing.B, what string, start time.Time, cond func() bool) time.Duration {
	b.Helper()
	for !cond() {
		if time.Since(start) > benchDrainTimeout {
			b.Fatalf("timed out after %s waiting until %s", benchDrainTimeout, what)
		}
		time.Sleep(benchDrainPoll)
	}
	return time.Since(start)
}

// benchEnvelopes returns n valid visits as the gateway stores them.
func benchEnvelopes(n int) []visit.Envelope {
	out := make([]visit.Envelope, n)
	now := time.Now().UTC()
	for i := range out {
		v := visit.Visit{
			VisitID: uuid.NewString(), ClientID: strconv.Itoa(101 + i%10), UserID: "23",
			ProposedDevices: []int64{1, 2, 5}, SoldDevices: []int64{5},
			DateTime: now.Add(-time.Duration(i) * time.Second), ClientNotes: "Kontrolle nach Lieferung",
		}
		out[i] = visit.Envelope{Visit: v, AcceptedAt: now, ContentHash: v.Hash()}
	}
	return out
}

// benchPlainInsert writes the visits with plain INSERTs in batches of 100 per
// transaction and returns the time it took.
func benchPlainInsert(b *testing.B, e *relaytest.Env, envelopes []visit.Envelope) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < len(envelopes); i += 100 {
		batch := &pgx.Batch{}
		for j, env := range envelopes[i:min(i+100, len(envelopes))] {
			batch.Queue(`INSERT INTO visits (visit_id, user_id, client_id, visited_at, client_notes,
additional_notes, accepted_at, stream_sequence, content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				env.VisitID, env.UserID, env.ClientID, env.DateTime, env.ClientNotes, env.AdditionalNotes,
				env.AcceptedAt, i+j+1, env.ContentHash)
			for pos, id := range env.ProposedDevices {
				batch.Queue(`INSERT INTO visit_devices (visit_id, device_id, position, sold) VALUES ($1, $2, $3, $4)`,
					env.VisitID, id, pos+1, id == 5)
			}
		}
		err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
			return tx.SendBatch(ctx, batch).Close()
		})
		if err != nil {
			b.Fatalf("plain insert: %v", err)
		}
	}
	return time.Since(start)
}

// benchPublishBacklog puts the visits into the cloud stream as the gateway would.
func benchPublishBacklog(b *testing.B, e *relaytest.Env, envelopes []visit.Envelope) {
	b.Helper()
	nc, err := nats.Connect(e.Gateway.NATSURL())
	if err != nil {
		b.Fatalf("connect to the gateway's NATS: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatalf("open JetStream: %v", err)
	}
	for _, env := range envelopes {
		data, _ := json.Marshal(env)
		msg := nats.NewMsg(streams.VisitSubject(env.UserID, env.VisitID))
		msg.Data = data
		msg.Header.Set(streams.HeaderContentHash, env.ContentHash)
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(env.VisitID), jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatalf("publish backlog: %v", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatalf("publish backlog of %d visits: timed out", len(envelopes))
	}
}
