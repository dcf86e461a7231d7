package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/natsembed"
	"github.com/visitrelay/visitrelay/internal/streams"
)

// setupStreams creates or updates the cloud visit stream, starts the
// archive, and starts the streams that source from the site. runCtx lives
// until Shutdown.
func (g *Gateway) setupStreams(ctx, runCtx context.Context) error {
	if err := natsembed.WaitJetStream(ctx, g.js); err != nil {
		return err
	}
	cfg := streams.CloudVisitsConfig(g.cfg.Visits.Retention, g.cfg.Visits.MaxBytes)
	cfg.Replicas = g.cfg.Cluster.StreamReplicas()
	err := natsembed.Retry(ctx, "create stream "+streams.Visits, func(ctx context.Context) error {
		var err error
		g.visits, err = g.js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return err
	}

	if g.cfg.Archive.Enabled {
		archiveCfg := g.cfg.Archive
		archiveCfg.Dir = g.cfg.archiveDir()
		// Each node archives every visit under its own durable consumer, so
		// that any node's archive is complete.
		arch, err := newArchiver(ctx, g.js, archiverConsumer+"-"+g.cfg.NATS.Name, archiveCfg, g.logger.With("component", "archive"))
		if err != nil {
			return fmt.Errorf("create archive consumer: %w", err)
		}
		go arch.run(runCtx)
	}

	// A gateway that already has a copy of the directory serves logins from
	// it at once, even while the site is offline.
	watching, err := g.watchDirectory(ctx, runCtx)
	if err != nil {
		return err
	}
	go g.setupSiteStreams(runCtx, watching)
	return nil
}

// watchDirectory starts following the directory mirror if it exists.
func (g *Gateway) watchDirectory(ctx, runCtx context.Context) (bool, error) {
	kv, err := g.js.KeyValue(ctx, streams.Directory)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open directory mirror: %w", err)
	}
	if err := g.dir.Watch(runCtx, kv); err != nil {
		return false, fmt.Errorf("load directory mirror: %w", err)
	}
	return true, nil
}

// setupSiteStreams creates the streams that source from the site once a
// leafnode link to this node is up, and follows the directory mirror once
// it exists. The server sends a new source's first request at once and
// waits 30 seconds for a response (nats-server v2.15.3), so a source created
// before any site is connected would start that much later. In a cluster,
// the node that the site dialed creates them and the others follow.
func (g *Gateway) setupSiteStreams(ctx context.Context, watching bool) {
	created := false
	failures := 0
	for ctx.Err() == nil && !(created && watching) {
		var err error
		if !watching {
			watching, err = g.watchDirectory(ctx, ctx)
		}
		if err == nil && !created && g.ns.LeafConnected() && g.siteStreamsReady(ctx) {
			err = g.createSiteStreams(ctx)
			created = err == nil
		}
		if err != nil {
			// Log the first failure and then one every ten minutes.
			if failures%120 == 0 {
				g.logger.Error("set up site streams failed; retrying every 5s", "site_domain", g.cfg.NATS.SiteDomain, "failures", failures+1, "error", err)
			}
			failures++
			sleepContext(ctx, 5*time.Second)
			continue
		}
		if watching && !created && g.cfg.Cluster.Enabled() {
			return // another node created them; this one follows the mirror
		}
		sleepContext(ctx, 500*time.Millisecond)
	}
}

// siteStreamsReady reports whether the site's receipt stream and directory
// bucket respond to info requests through the leafnode link. A site cluster that has just
// connected may not have elected their leaders yet, and a source or mirror
// whose first request goes unanswered waits 30 s before the next.
func (g *Gateway) siteStreamsReady(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	js, err := jetstream.NewWithDomain(g.nc, g.cfg.NATS.SiteDomain)
	if err != nil {
		return false
	}
	if _, err := js.Stream(ctx, streams.Receipts); err != nil {
		return false
	}
	_, err = js.KeyValue(ctx, streams.Directory)
	return err == nil
}

func (g *Gateway) createSiteStreams(ctx context.Context) error {
	replicas := g.cfg.Cluster.StreamReplicas()
	receipts := streams.CloudReceiptsConfig(g.cfg.NATS.SiteDomain, g.cfg.Visits.Retention)
	receipts.Replicas = replicas
	err := natsembed.Retry(ctx, "create stream "+streams.Receipts, func(ctx context.Context) error {
		_, err := g.js.CreateOrUpdateStream(ctx, receipts)
		return err
	})
	if err != nil {
		return err
	}
	directory := streams.CloudDirectoryConfig(g.cfg.NATS.SiteDomain)
	directory.Replicas = replicas
	err = natsembed.Retry(ctx, "create directory mirror", func(ctx context.Context) error {
		_, err := g.js.CreateOrUpdateKeyValue(ctx, directory)
		return err
	})
	if err != nil {
		return err
	}
	g.logger.Info("site streams created", "site_domain", g.cfg.NATS.SiteDomain)
	return nil
}

// LeafConnected reports whether a site's leafnode link to this node is up.
func (g *Gateway) LeafConnected() bool { return g.ns.LeafConnected() }

// NATSURL returns the loopback URL of the embedded NATS server's client
// listener, for tools and tests on this machine.
func (g *Gateway) NATSURL() string { return g.ns.ClientURL() }
