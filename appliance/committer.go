package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/visitrelay/visitrelay/internal/natsembed"
	"github.com/visitrelay/visitrelay/internal/streams"
	"github.com/visitrelay/visitrelay/internal/visit"
)

// committer moves visits from the site's stream into PostgreSQL exactly
// once: fetch a batch, insert it in one transaction, publish receipts, then
// ack and wait for the ack's confirmation. A crash anywhere in between
// leads to a redelivery, which the insert-if-absent turns into a no-op.
type committer struct {
	cfg      CommitterConfig
	pool     *pgxpool.Pool
	js       jetstream.JetStream
	consumer jetstream.Consumer
	logger   *slog.Logger

	committed   atomic.Int64
	duplicates  atomic.Int64
	deadLetters atomic.Int64
	lastCommit  atomic.Int64 // unix nanoseconds
	dbDownSince atomic.Int64 // unix nanoseconds, or 0 while the database responds

	// awaitingReceipt holds the visits committed by a batch whose receipts
	// failed; only the committer's goroutine uses it.
	awaitingReceipt map[string]struct{}

	// For the status page and /metrics (metrics.go).
	redeliveries atomic.Int64
	metrics      *commitMetrics
}

// receiptRetryDelay is how long a batch whose receipts failed waits before
// its redelivery.
const receiptRetryDelay = 2 * time.Second

// maxAwaitingReceipt bounds committer.awaitingReceipt; beyond it the status
// counters may count a few visits as duplicates rather than committed.
const maxAwaitingReceipt = 100_000

// consumerConfig keeps MaxAckPending above the batch size and AckWait above
// the slowest commit, so the consumer never stalls silently.
func consumerConfig(cfg CommitterConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       streams.Committer,
		Description:   "commits visits to PostgreSQL",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxAckPending: max(10*cfg.BatchSize, 1000),
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// run fetches and commits batches until ctx ends.
func (c *committer) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		msgs, err := natsembed.FetchAvailable(c.consumer, c.cfg.BatchSize)
		if err != nil {
			// Log the first failure and then one a minute, not one a second.
			if failures%60 == 0 {
				c.logger.Warn("fetch visits failed; retrying every second", "consumer", streams.Committer, "failures", failures+1, "error", err)
			}
			failures++
			sleep(ctx, time.Second)
			continue
		}
		if failures > 0 {
			c.logger.Info("fetch visits works again", "consumer", streams.Committer, "failures", failures)
			failures = 0
		}
		if len(msgs) > 0 {
			c.handle(ctx, msgs)
		}
	}
}

// handle commits one fetched batch. Messages that cannot be decoded go to
// dead letters at once: no retry can fix them.
func (c *committer) handle(ctx context.Context, msgs []jetstream.Msg) {
	items := make([]*pending, 0, len(msgs))
	byItem := make(map[*pending]jetstream.Msg, len(msgs))
	for _, msg := range msgs {
		c.noteDelivery(msg)
		p, err := decodePending(msg)
		if err != nil {
			c.deadLetter(ctx, msg, fmt.Sprintf("undecodable message: %v", err))
			continue
		}
		items = append(items, p)
		byItem[p] = msg
	}
	if len(items) == 0 {
		return
	}

	err := c.commitWaiting(ctx, items, byItem)
	if err == nil {
		c.finish(ctx, items, byItem)
		return
	}
	if !isContentError(err) {
		c.release(items, byItem)
		return
	}

	// One visit spoiled the batch: commit them one by one to find it.
	for i, p := range items {
		one := []*pending{p}
		err := c.commitWaiting(ctx, one, byItem)
		switch {
		case err == nil:
			c.finish(ctx, one, byItem)
		case isContentError(err):
			c.reject(ctx, byItem[p], err)
		default:
			c.release(items[i:], byItem)
			return
		}
	}
}

// release hands uncommitted visits back to the stream when the committer
// stops, so that the next start gets them at once rather than after
// AckWait. A nak counts as a delivery, so each stop uses up one of a
// visit's MaxAttempts should the database later reject its content.
func (c *committer) release(items []*pending, byItem map[*pending]jetstream.Msg) {
	for _, p := range items {
		_ = byItem[p].Nak()
	}
}

func decodePending(msg jetstream.Msg) (*pending, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	var env visit.Envelope
	if err := json.Unmarshal(msg.Data(), &env); err != nil {
		return nil, fmt.Errorf("decode visit: %w", err)
	}
	if env.VisitID == "" || env.ContentHash == "" {
		return nil, errors.New("decode visit: visitId or contentHash missing")
	}
	return &pending{env: env, sequence: meta.Sequence.Stream}, nil
}

// commitWaiting commits items, waiting out a database that is down or slow
// for as long as it takes. While it waits it marks the messages in
// progress with JetStream, so the outage does not burn redeliveries. It
// returns nil, a content error, or ctx's error.
func (c *committer) commitWaiting(ctx context.Context, items []*pending, byItem map[*pending]jetstream.Msg) error {
	stop := c.keepInProgress(items, byItem)
	defer stop()

	delay := 250 * time.Millisecond
	for {
		txCtx, cancel := context.WithTimeout(ctx, c.cfg.AckWait/2)
		start := time.Now()
		err := commitVisits(txCtx, c.pool, items)
		c.metrics.observeCommit(time.Since(start), err)
		cancel()
		if err == nil {
			c.markDatabaseUp()
			return nil
		}
		if isContentError(err) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		c.markDatabaseDown(err, len(items))
		sleep(ctx, delay)
		delay = min(delay*2, 10*time.Second)
	}
}

// keepInProgress extends the ack deadline of the messages every third of
// AckWait until the returned stop function is called.
func (c *committer) keepInProgress(items []*pending, byItem map[*pending]jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		ticker := time.NewTicker(c.cfg.AckWait / 3)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				for _, p := range items {
					_ = byItem[p].InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
}

func (c *committer) markDatabaseDown(err error, waiting int) {
	now := time.Now().UnixNano()
	if c.dbDownSince.CompareAndSwap(0, now) {
		c.logger.Error("database unavailable; holding visits until it responds",
			"waiting", waiting, "error", err)
	}
}

func (c *committer) markDatabaseUp() {
	since := c.dbDownSince.Swap(0)
	if since != 0 {
		c.logger.Info("database available again", "down_for", time.Since(time.Unix(0, since)).Round(time.Millisecond))
	}
}

// finish publishes receipts for committed visits and then acks them. The
// receipts go first: if the process dies before the ack, the redelivery
// publishes them again, and the receipt stream drops the copy by its id.
func (c *committer) finish(ctx context.Context, items []*pending, byItem map[*pending]jetstream.Msg) {
	if err := c.publishReceipts(ctx, items); err != nil {
		c.logger.Warn("publish receipts failed; the visits will be redelivered", "count", len(items),
			"retry_in", receiptRetryDelay, "error", err)
		c.retryReceipts(items, byItem)
		return
	}
	for i, p := range items {
		msg := byItem[p]
		var err error
		if i == len(items)-1 {
			// Acks travel in order on one connection, so the confirmed ack of
			// the last message means the server has processed every earlier one.
			err = msg.DoubleAck(ctx)
		} else {
			err = msg.Ack()
		}
		if err != nil {
			c.logger.Warn("ack failed; the visit will be redelivered and absorbed as a duplicate",
				"visit_id", p.env.VisitID, "error", err)
		}
		if p.duplicate && !c.receiptPending(p.env.VisitID) {
			c.duplicates.Add(1)
		} else {
			c.committed.Add(1)
		}
		c.logger.Debug("visit committed", "visit_id", p.env.VisitID, "duplicate", p.duplicate, "sequence", p.sequence)
	}
	c.lastCommit.Store(time.Now().UnixNano())
}

// publishReceipts stores one receipt per visit in the site's receipt
// stream. Several receipts go out as one atomic batch, which the stream
// stores with one fsync. A redelivered visit has a receipt already, which
// fails the whole batch, so then they are published one by one and the
// stream drops the copies by their Nats-Msg-Id.
// retryReceipts hands committed visits whose receipts failed back to the
// stream after a short delay, rather than after AckWait: a receipt stream
// without a leader usually has a new one within seconds. It remembers the
// visits, so that their redelivery counts them as committed, not as
// duplicates.
func (c *committer) retryReceipts(items []*pending, byItem map[*pending]jetstream.Msg) {
	if len(c.awaitingReceipt) > maxAwaitingReceipt {
		clear(c.awaitingReceipt)
	}
	for _, p := range items {
		if !p.duplicate {
			c.awaitingReceipt[p.env.VisitID] = struct{}{}
		}
		_ = byItem[p].NakWithDelay(receiptRetryDelay)
	}
}

// receiptPending reports whether visitID was committed by an earlier
// delivery whose receipt failed, and removes it from that set.
func (c *committer) receiptPending(visitID string) bool {
	_, ok := c.awaitingReceipt[visitID]
	delete(c.awaitingReceipt, visitID)
	return ok
}

func (c *committer) publishReceipts(ctx context.Context, items []*pending) error {
	msgs := make([]*nats.Msg, len(items))
	for i, p := range items {
		data, _ := json.Marshal(streams.Receipt{VisitID: p.env.VisitID, UserID: p.env.UserID, CommittedAt: p.committedAt.UTC()})
		msg := nats.NewMsg(streams.ReceiptSubject(p.env.UserID, p.env.VisitID))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, p.env.VisitID)
		msgs[i] = msg
	}
	if len(msgs) > 1 {
		flow := jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: c.cfg.AckWait / 2}
		if _, err := jetstreamext.PublishMsgBatch(ctx, c.js, msgs, flow); err == nil {
			return nil
		}
	}
	return c.publishReceiptsEach(ctx, msgs)
}

func (c *committer) publishReceiptsEach(ctx context.Context, msgs []*nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, msg := range msgs {
		f, err := c.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish receipt %s: %w", msg.Subject, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish receipt: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// reject handles a visit the database refused for its content: it is tried
// again after a growing delay, and after MaxAttempts deliveries it moves to
// dead letters. It is never dropped.
func (c *committer) reject(ctx context.Context, msg jetstream.Msg, cause error) {
	meta, err := msg.Metadata()
	attempts := 1
	if err == nil {
		attempts = int(meta.NumDelivered)
	}
	if attempts >= c.cfg.MaxAttempts {
		c.deadLetter(ctx, msg, rejectionReason(cause))
		return
	}
	delay := time.Duration(1<<min(attempts, 6)) * time.Second
	c.logger.Warn("database rejected visit; will retry", "subject", msg.Subject(),
		"attempt", attempts, "max_attempts", c.cfg.MaxAttempts, "retry_in", delay, "error", cause)
	if err := msg.NakWithDelay(delay); err != nil {
		c.logger.Warn("nak failed; the visit will be redelivered after the ack wait", "subject", msg.Subject(), "error", err)
	}
}

// deadLetter stores the message in the dead-letter stream with the reason,
// and only then acks the original, so the visit is never in neither place.
func (c *committer) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) {
	attempts := "1"
	if meta, err := msg.Metadata(); err == nil {
		attempts = strconv.FormatUint(meta.NumDelivered, 10)
	}
	visitID := visitIDFromSubject(msg.Subject())
	dl := nats.NewMsg(streams.DeadLetterSubject(visitID))
	dl.Data = msg.Data()
	dl.Header.Set(streams.HeaderReason, reason)
	dl.Header.Set(streams.HeaderAttempts, attempts)
	dl.Header.Set("Visitrelay-Original-Subject", msg.Subject())

	if _, err := c.js.PublishMsg(ctx, dl); err != nil {
		c.logger.Error("store dead letter failed; the visit stays in the stream and is retried",
			"visit_id", visitID, "error", err)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		c.logger.Warn("ack of dead-lettered visit failed; it will be redelivered", "visit_id", visitID, "error", err)
	}
	c.deadLetters.Add(1)
	c.logger.Error("visit moved to dead letters; fix the cause and replay it",
		"visit_id", visitID, "attempts", attempts, "reason", reason)
}

// visitIDFromSubject returns the last token of a visit subject, or "unknown"
// for a subject of another form.
func visitIDFromSubject(subject string) string {
	for i := len(subject) - 1; i >= 0; i-- {
		if subject[i] == '.' {
			if i == len(subject)-1 {
				break
			}
			return subject[i+1:]
		}
	}
	return "unknown"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
