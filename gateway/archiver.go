package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/archive"
	"github.com/visitrelay/visitrelay/internal/natsembed"
	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// archiverConsumer prefixes the durable consumer, one per node, that copies
// every accepted visit into the day files of the archive.
const archiverConsumer = "archiver"

// archiveBatchSize and archiveBatchWait bound one batch of the archive: a
// backlog goes in batches of archiveBatchSize, a trickle in one batch per
// archiveBatchWait.
const (
	archiveBatchSize = 500
	archiveBatchWait = 2 * time.Second
)

// archiver appends every visit of the cloud stream to the archive. It acks
// a batch only after the archive file is fsynced, so a crash writes a batch
// twice at worst, and a replay of the archive is idempotent anyway.
type archiver struct {
	dir      string
	keep     time.Duration
	consumer jetstream.Consumer
	logger   *slog.Logger
	pruned   time.Time
}

func newArchiver(ctx context.Context, js jetstream.JetStream, name string, cfg ArchiveConfig, logger *slog.Logger) (*archiver, error) {
	cfgConsumer := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "copies accepted visits into the daily archive files",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 2000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	var consumer jetstream.Consumer
	err := natsembed.Retry(ctx, "create consumer "+name, func(ctx context.Context) error {
		var err error
		consumer, err = js.CreateOrUpdateConsumer(ctx, streams.Visits, cfgConsumer)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &archiver{dir: cfg.Dir, keep: cfg.Keep, consumer: consumer, logger: logger}, nil
}

func (a *archiver) run(ctx context.Context) {
	for ctx.Err() == nil {
		a.prune()
		msgs, err := a.fetch()
		if err != nil {
			a.logger.Warn("fetch visits to archive failed; retrying in 1s", "error", err)
			sleepContext(ctx, time.Second)
			continue
		}
		if len(msgs) > 0 {
			a.write(ctx, msgs)
		}
	}
}

// fetch collects visits for up to archiveBatchWait, so that at a trickle of
// posts one fsync of the archive covers many visits instead of each one,
// and the archive's fsyncs do not slow down those of the stream.
func (a *archiver) fetch() ([]jetstream.Msg, error) {
	batch, err := a.consumer.Fetch(archiveBatchSize, jetstream.FetchMaxWait(archiveBatchWait))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for msg := range batch.Messages() {
		msgs = append(msgs, msg)
	}
	// Messages in hand are written even when the fetch ended with an
	// error; the error counts only when nothing came.
	err = batch.Error()
	if len(msgs) > 0 || err == nil || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
		return msgs, nil
	}
	return nil, err
}

// write groups a batch by the day of acceptance and appends each group.
// A failed write leaves the batch unacked, so it is fetched again.
func (a *archiver) write(ctx context.Context, msgs []jetstream.Msg) {
	days := map[string][]archive.Record{}
	dayTimes := map[string]time.Time{}
	for _, msg := range msgs {
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		var env visit.Envelope
		if err := json.Unmarshal(msg.Data(), &env); err != nil {
			a.logger.Error("archive skips a visit it cannot decode", "sequence", meta.Sequence.Stream, "error", err)
			continue
		}
		name := archive.FileName(env.AcceptedAt)
		days[name] = append(days[name], archive.Record{Sequence: meta.Sequence.Stream, Visit: env})
		dayTimes[name] = env.AcceptedAt
	}
	for name, records := range days {
		if err := archive.Append(a.dir, dayTimes[name], records); err != nil {
			a.logger.Error("write archive failed; retrying the batch", "file", name, "error", err)
			sleepContext(ctx, 5*time.Second)
			return
		}
	}
	for i, msg := range msgs {
		if i == len(msgs)-1 {
			_ = msg.DoubleAck(ctx)
			break
		}
		_ = msg.Ack()
	}
}

// prune deletes day files past the retention, at most once an hour.
func (a *archiver) prune() {
	if time.Since(a.pruned) < time.Hour {
		return
	}
	a.pruned = time.Now()
	removed, err := archive.Prune(a.dir, a.keep, time.Now())
	if err != nil {
		a.logger.Warn("prune archive failed", "dir", a.dir, "error", err)
	}
	for _, name := range removed {
		a.logger.Info("old archive file removed", "file", name, "keep", a.keep)
	}
}

func sleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
