package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// maxPublishBatch bounds one atomic batch. nats-server v2.15.3 rejects
// atomic batches of more than 1,000 messages by default.
const maxPublishBatch = 256

// visitPublisher stores visits in the cloud stream. With fsync before every
// ack, the stream writes one visit per fsync, so posts that arrive while a
// publish is in flight wait and go out together as one atomic batch, which
// the stream stores with one fsync. A post that arrives alone is published
// at once.
type visitPublisher struct {
	js      jetstream.JetStream
	timeout time.Duration
	queue   chan *publishRequest
	logger  *slog.Logger
}

type publishRequest struct {
	msg    *nats.Msg
	result chan publishResult // buffered, so a sender never waits for a caller that gave up
}

type publishResult struct {
	ack *jetstream.PubAck
	err error
}

func newVisitPublisher(js jetstream.JetStream, timeout time.Duration, logger *slog.Logger) *visitPublisher {
	return &visitPublisher{js: js, timeout: timeout, queue: make(chan *publishRequest, maxPublishBatch), logger: logger}
}

// publish stores msg and returns its ack. The message must carry its
// Nats-Msg-Id and Nats-Expected-Stream headers, because it may be sent as
// part of a batch.
func (p *visitPublisher) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	req := &publishRequest{msg: msg, result: make(chan publishResult, 1)}
	select {
	case p.queue <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.result:
		return r.ack, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run publishes queued visits until ctx ends.
func (p *visitPublisher) run(ctx context.Context) {
	batch := make([]*publishRequest, 0, maxPublishBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-p.queue:
			batch = append(batch[:0], req)
		}
		batch = p.collect(batch)

		flushCtx, cancel := context.WithTimeout(ctx, p.timeout)
		p.flush(flushCtx, batch)
		cancel()
	}
}

// collect adds the requests already waiting to batch, without waiting for
// more.
func (p *visitPublisher) collect(batch []*publishRequest) []*publishRequest {
	for len(batch) < maxPublishBatch {
		select {
		case req := <-p.queue:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

func (p *visitPublisher) flush(ctx context.Context, batch []*publishRequest) {
	if len(batch) == 1 {
		p.publishEach(ctx, batch)
		return
	}

	msgs := make([]*nats.Msg, len(batch))
	for i, req := range batch {
		msgs[i] = req.msg
	}
	// The first message is not acknowledged on its own: the commit's ack
	// reports any problem, and waiting for both would double the round trips.
	flow := jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: p.timeout}
	ack, err := jetstreamext.PublishMsgBatch(ctx, p.js, msgs, flow)
	if err != nil {
		// The stream stores an atomic batch whole or not at all. A visitId
		// seen before, a full stream or a lost reply fails the whole batch,
		// so each visit is published again on its own to get its own ack or
		// error. The Nats-Msg-Id turns any copy the batch did store into a
		// duplicate.
		p.logger.Debug("atomic batch failed; publishing its visits one by one", "count", len(batch), "error", err)
		p.publishEach(ctx, batch)
		return
	}

	// The stream stores a batch at consecutive sequences, and the ack
	// carries the last one.
	first := ack.Sequence - uint64(len(batch)) + 1
	for i, req := range batch {
		req.result <- publishResult{ack: &jetstream.PubAck{Stream: ack.Stream, Domain: ack.Domain, Sequence: first + uint64(i)}}
	}
}

// publishEach publishes the visits as separate messages, all in flight at
// once, and hands each its own ack or error.
func (p *visitPublisher) publishEach(ctx context.Context, batch []*publishRequest) {
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, req := range batch {
		f, err := p.js.PublishMsgAsync(req.msg)
		if err != nil {
			req.result <- publishResult{err: fmt.Errorf("publish: %w", err)}
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			batch[i].result <- publishResult{ack: ack}
		case err := <-f.Err():
			batch[i].result <- publishResult{err: err}
		case <-ctx.Done():
			batch[i].result <- publishResult{err: fmt.Errorf("wait for publish ack: %w", ctx.Err())}
		}
	}
}
