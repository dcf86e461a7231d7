package natsembed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterOptions join the server to a NATS cluster of nodes of the same
// side, so that streams can be replicated across them.
type ClusterOptions struct {
	// Name is the cluster name; every node of the cluster uses the same.
	Name string
	// Host and Port are the route listener; port -1 picks a free one.
	Host string
	Port int
	// Routes are the route URLs of the nodes, this one's included.
	Routes []*url.URL
}

func applyCluster(sopts *server.Options, c *ClusterOptions) {
	if c == nil {
		return
	}
	sopts.Cluster.Name = c.Name
	sopts.Cluster.Host = c.Host
	sopts.Cluster.Port = c.Port
	sopts.Routes = c.Routes
}

// ClusterPort returns the port of the route listener, or 0 without one.
func (s *Server) ClusterPort() int {
	if s.opts.Cluster.Port < 0 {
		return 0
	}
	return s.opts.Cluster.Port
}

// WaitJetStream waits until the JetStream API responds. A clustered node
// responds only once the nodes have elected a meta leader, which needs a
// majority of them running.
func WaitJetStream(ctx context.Context, js jetstream.JetStream) error {
	for {
		infoCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(infoCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for JetStream: %w (last error: %w); in a cluster, start a majority of the nodes", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Retry runs a JetStream API call until it succeeds or ctx ends, with each
// attempt bounded to 5 s. The nodes of a new cluster create the same
// streams and consumers at the same moment, and with nats-server v2.15.3
// such concurrent requests for one replicated asset get no response, but a
// fresh request after a pause does.
func Retry(ctx context.Context, what string, attempt func(context.Context) error) error {
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := attempt(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case <-time.After(time.Duration(100+rand.IntN(400)) * time.Millisecond):
		}
	}
}
