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

// BenchmarkBacklogDrain measures how fast the appliance commits a backlog
// waiting in the cloud, against a plain pgx batch insert of the same rows
// into the same database (100 visits per transaction, the committer's
// batch size). BENCH_BACKLOG sets the backlog, 20,000 by default. The
// backlog is published to the cloud stream directly, not over HTTP, since
// only the drain is measured. Run it with -benchtime=1x.
func BenchmarkBacklogDrain(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("BENCH_BACKLOG")); err == nil && v > 0 {
		n = v
	}
	e := relaytest.Start(b)
	e.StopAppliance()
	envelopes := makeEnvelopes(n)

	for b.Loop() {
		plain := plainInsert(b, e, envelopes)
		if _, err := e.Pool.Exec(context.Background(), "TRUNCATE visits CASCADE"); err != nil {
			b.Fatalf("empty visits: %v", err)
		}

		publishBacklog(b, e, envelopes)
		start := time.Now()
		e.StartAppliance()
		// The on-prem stream's count shows whether sourcing or committing
		// limits the drain.
		var sourced time.Duration
		e.WaitFor("the backlog is sourced on-prem", 30*time.Minute, func() bool {
			sourced = time.Since(start)
			return e.Gateway.LeafConnected() && e.SiteStreamMessages() >= uint64(n)
		})
		e.WaitVisits(n, 30*time.Minute)
		drain := time.Since(start)
		b.ReportMetric(float64(n)/sourced.Seconds(), "source-visits/s")

		plainRate := float64(n) / plain.Seconds()
		drainRate := float64(n) / drain.Seconds()
		b.ReportMetric(plainRate, "plain-insert-visits/s")
		b.ReportMetric(drainRate, "drain-visits/s")
		b.ReportMetric(drainRate/plainRate, "drain/plain")
	}
}

func makeEnvelopes(n int) []visit.Envelope {
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

// plainInsert writes the visits with plain INSERTs in batches of 100 per
// transaction and returns the time it took.
func plainInsert(b *testing.B, e *relaytest.Env, envelopes []visit.Envelope) time.Duration {
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

// publishBacklog puts the visits into the cloud stream as the gateway would.
func publishBacklog(b *testing.B, e *relaytest.Env, envelopes []visit.Envelope) {
	b.Helper()
	nc, err := nats.Connect(e.Gateway.NATSURL())
	if err != nil {
		b.Fatalf("connect to the gateway's NATS: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
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
		b.Fatal(fmt.Sprintf("publish backlog of %d visits: timed out", len(envelopes)))
	}
}
