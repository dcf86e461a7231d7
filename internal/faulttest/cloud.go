package faulttest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/streams"
)

// errCodeWrongLastMsgID is the JetStream API error code of a publish whose
// Nats-Expected-Last-Msg-Id does not match (JSStreamWrongLastMsgIDErrF in
// nats-server v2.15.3). nats.go names no constant for it.
const errCodeWrongLastMsgID jetstream.ErrorCode = 10070

// cloudTimeout bounds one request to the gateway's NATS server.
const cloudTimeout = 30 * time.Second

// CloudStreamInfo returns the state of the gateway's VISITS stream, read
// through the gateway's loopback NATS client port.
func (s *System) CloudStreamInfo() *jetstream.StreamInfo {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cloudTimeout)
	defer cancel()
	info, err := s.cloudStreamInfo(ctx)
	if err != nil {
		s.t.Fatalf("read the cloud stream: %v", err)
	}
	return info
}

func (s *System) cloudStreamInfo(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	var info *jetstream.StreamInfo
	err := s.withCloudStream(ctx, func(_ jetstream.JetStream, stream jetstream.Stream) error {
		var err error
		info, err = stream.Info(ctx, opts...)
		return err
	})
	return info, err
}

// withCloudStream connects to the gateway's NATS server and calls fn with
// its VISITS stream.
func (s *System) withCloudStream(ctx context.Context, fn func(jetstream.JetStream, jetstream.Stream) error) error {
	nc, err := nats.Connect(s.GatewayNATSURL, nats.Name("faulttest"))
	if err != nil {
		return fmt.Errorf("connect to the gateway's NATS server: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open JetStream context: %w", err)
	}
	stream, err := js.Stream(ctx, streams.Visits)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", streams.Visits, err)
	}
	return fn(js, stream)
}

// ShortenDuplicateWindow sets the cloud VISITS stream's duplicate window to
// d. nats-server (v2.15.3) purges the message ids older than the new window
// at once, so this simulates the hour that a test cannot wait for. The
// gateway sets the window back to its own value when it starts.
func (s *System) ShortenDuplicateWindow(d time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cloudTimeout)
	defer cancel()
	err := s.withCloudStream(ctx, func(js jetstream.JetStream, stream jetstream.Stream) error {
		cfg := stream.CachedInfo().Config
		cfg.Duplicates = d
		_, err := js.UpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		s.t.Fatalf("shorten the duplicate window of the cloud stream: %v", err)
	}
}

// CloudRemembers reports whether the cloud VISITS stream's duplicate window
// still holds v's visitId as a Nats-Msg-Id. It publishes on v's subject with
// that id and an expected last message id that never matches. The server
// checks duplicates first, so it returns a duplicate ack for a remembered
// id and rejects a forgotten one for the wrong last message id. Either way
// nothing is stored.
func (s *System) CloudRemembers(v Visit) bool {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cloudTimeout)
	defer cancel()
	var remembered bool
	err := s.withCloudStream(ctx, func(js jetstream.JetStream, _ jetstream.Stream) error {
		ack, err := js.Publish(ctx, streams.VisitSubject(v.UserID, v.VisitID), []byte("faulttest probe"),
			jetstream.WithMsgID(v.VisitID), jetstream.WithExpectLastMsgID("faulttest-probe-never-matches"))
		var apiErr *jetstream.APIError
		switch {
		case err == nil && ack.Duplicate:
			remembered = true
			return nil
		case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeWrongLastMsgID:
			return nil
		case err == nil:
			return fmt.Errorf("the probe for visit %s was stored at sequence %d", v.VisitID, ack.Sequence)
		}
		return err
	})
	if err != nil {
		s.t.Fatalf("probe the duplicate window of the cloud stream: %v", err)
	}
	return remembered
}
