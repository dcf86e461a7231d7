package natsembed

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"
)

func startTest(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.StoreDir = t.TempDir()
	s, err := Start(opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func TestStartSyncsBeforeAck(t *testing.T) {
	s := startTest(t, Options{Name: "sync", Domain: "cloud"})
	cfg := s.JetStreamConfig()
	if cfg == nil {
		t.Fatal("JetStream is not configured")
	}
	if !cfg.SyncAlways {
		t.Error("SyncAlways is off: an acknowledged write could be lost on power loss")
	}
	if cfg.Domain != "cloud" {
		t.Errorf("domain %q, want cloud", cfg.Domain)
	}
}

func TestClientListenerOnLoopback(t *testing.T) {
	s := startTest(t, Options{Name: "loopback", Domain: "site"})
	host, _, err := net.SplitHostPort(s.Addr().String())
	if err != nil {
		t.Fatalf("parse client address %q: %v", s.Addr(), err)
	}
	if !net.ParseIP(host).IsLoopback() {
		t.Errorf("client listener on %s, want a loopback address", host)
	}
	if s.LeafPort() != 0 {
		t.Errorf("leafnode listener open on port %d without LeafPort", s.LeafPort())
	}
}

func TestLeafnodeLinkBetweenDomains(t *testing.T) {
	hub := startTest(t, Options{Name: "hub", Domain: "cloud", LeafHost: "127.0.0.1", LeafPort: -1})
	if hub.LeafPort() <= 0 {
		t.Fatalf("hub leafnode port %d, want a chosen port", hub.LeafPort())
	}
	leaf := startTest(t, Options{Name: "leaf", Domain: "site", LeafRemotes: []*url.URL{{
		Scheme: "nats-leaf", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(hub.LeafPort())),
	}}})

	deadline := time.Now().Add(10 * time.Second)
	for !leaf.LeafConnected() || !hub.LeafConnected() {
		if time.Now().After(deadline) {
			t.Fatal("leafnode link not up after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
