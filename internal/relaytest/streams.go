package relaytest

import (
	"context"
	"time"

	"github.com/visitrelay/visitrelay/internal/streams"
)

// streamInfoTimeout bounds one stream info request. A request to the site's
// domain crosses the leafnode link.
const streamInfoTimeout = 5 * time.Second

// CloudStreamMessages returns the number of messages in the gateway's VISITS
// stream: every visit the gateway accepted and still retains.
func (e *Env) CloudStreamMessages() uint64 {
	e.t.Helper()
	return e.streamMessages(streams.CloudDomain, streams.Visits)
}

// SiteStreamMessages returns the number of messages in the appliance's
// VISITS stream, which sources the gateway's. The request goes through the
// gateway and the leafnode link, so the appliance must be running and linked.
func (e *Env) SiteStreamMessages() uint64 {
	e.t.Helper()
	return e.streamMessages(e.applianceCfg.NATS.Domain, streams.Visits)
}

// DeadLetterMessages returns the number of messages in the appliance's
// DEADLETTERS stream. The request goes through the gateway and the leafnode
// link, so the appliance must be running and linked.
func (e *Env) DeadLetterMessages() uint64 {
	e.t.Helper()
	return e.streamMessages(e.applianceCfg.NATS.Domain, streams.DeadLetters)
}

func (e *Env) streamMessages(domain, name string) uint64 {
	e.t.Helper()
	if e.Gateway == nil {
		e.t.Fatalf("read stream %s in domain %q: the gateway is not running", name, domain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), streamInfoTimeout)
	defer cancel()
	info, err := e.Gateway.StreamInfo(ctx, domain, name)
	if err != nil {
		e.t.Fatalf("read stream %s in domain %q: %v", name, domain, err)
	}
	return info.State.Msgs
}
