package faulttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/streams"
)

// siteTimeout bounds one request to the appliance's NATS server.
const siteTimeout = 10 * time.Second

// SiteState is the state of the appliance's VISITS stream and of the
// committer consumer, as the appliance's NATS server reports it.
type SiteState struct {
	// Messages and Bytes are the site stream's totals.
	Messages, Bytes uint64
	// Pending is the number of messages the committer has not fetched yet.
	Pending uint64
	// AckPending is the number of fetched messages not acked yet.
	AckPending int
}

// SiteState reads the state through the appliance's loopback NATS client
// port. The appliance must be running.
func (s *System) SiteState() (SiteState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), siteTimeout)
	defer cancel()
	nc, stream, err := s.openSiteStream(ctx)
	if err != nil {
		return SiteState{}, err
	}
	defer nc.Close()

	info, err := stream.Info(ctx)
	if err != nil {
		return SiteState{}, fmt.Errorf("read site stream %s: %w", streams.Visits, err)
	}
	consumer, err := stream.Consumer(ctx, streams.Committer)
	if err != nil {
		return SiteState{}, fmt.Errorf("open consumer %s: %w", streams.Committer, err)
	}
	consumerInfo, err := consumer.Info(ctx)
	if err != nil {
		return SiteState{}, fmt.Errorf("read consumer %s: %w", streams.Committer, err)
	}
	return SiteState{Messages: info.State.Msgs, Bytes: info.State.Bytes,
		Pending: consumerInfo.NumPending, AckPending: consumerInfo.NumAckPending}, nil
}

// PurgeSiteStream removes every message from the appliance's VISITS
// stream, as `nats stream purge` does, and as the tail's MaxAge does once no
// visit has arrived for that long. The appliance must be running.
func (s *System) PurgeSiteStream() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), siteTimeout)
	defer cancel()
	nc, stream, err := s.openSiteStream(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	defer nc.Close()

	if err := stream.Purge(ctx); err != nil {
		s.t.Fatalf("purge site stream %s: %v", streams.Visits, err)
	}
}

// openSiteStream connects to the appliance's loopback NATS client port,
// whose URL the appliance writes to nats.url in its state directory, and
// opens its VISITS stream. The caller closes the connection.
func (s *System) openSiteStream(ctx context.Context) (*nats.Conn, jetstream.Stream, error) {
	url, err := os.ReadFile(filepath.Join(s.ApplianceStateDir(), "nats.url"))
	if err != nil {
		return nil, nil, fmt.Errorf("read the appliance's NATS URL: %w", err)
	}
	nc, err := nats.Connect(strings.TrimSpace(string(url)), nats.Name("faulttest"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the appliance's NATS server: %w", err)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("open JetStream context: %w", err)
	}
	stream, err := js.Stream(ctx, streams.Visits)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("open site stream %s: %w", streams.Visits, err)
	}
	return nc, stream, nil
}
