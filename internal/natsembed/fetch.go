package natsembed

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FetchAvailable waits up to a second for one message, then takes whatever
// else is already waiting, up to size. A plain Fetch of a whole batch holds
// a lone message until its wait expires, so this form hands it over at
// once and still batches a backlog.
func FetchAvailable(consumer jetstream.Consumer, size int) ([]jetstream.Msg, error) {
	first, err := consumer.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return nil, err
	}
	msgs := collect(first)
	if len(msgs) == 0 || size <= 1 {
		return msgs, nil
	}
	rest, err := consumer.FetchNoWait(size - 1)
	if err != nil {
		// The first message is in hand; the rest waits for the next call.
		return msgs, nil
	}
	return append(msgs, collect(rest)...), nil
}

func collect(batch jetstream.MessageBatch) []jetstream.Msg {
	var msgs []jetstream.Msg
	for msg := range batch.Messages() {
		msgs = append(msgs, msg)
	}
	return msgs
}
