// Package appliance is the on-prem side of visitrelay: a leaf nats-server
// that sources the cloud's visit stream over an outbound leafnode link, the
// committer that stores each visit in PostgreSQL exactly once, and the
// publisher that sends the directory to the cloud.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/natsembed"
	"github.com/visitrelay/visitrelay/internal/streams"
)

// Appliance is one running appliance.
type Appliance struct {
	cfg    Config
	logger *slog.Logger

	pool      *pgxpool.Pool
	ns        *natsembed.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	committer *committer
	status    *statusService // status page, /metrics and heartbeat (status.go)
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New returns an appliance for a validated config.
func New(cfg Config, logger *slog.Logger) *Appliance {
	return &Appliance{cfg: cfg, logger: logger}
}

// Start connects to the database, starts NATS and the streams, and starts
// the committer and the directory publisher. A database that is down does
// not stop the start: visits keep arriving from the cloud and wait in the
// stream until it is back.
func (a *Appliance) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.stop(context.Background())
		}
	}()

	if err := a.openDatabase(ctx); err != nil {
		return err
	}
	if err := a.startNATS(); err != nil {
		return err
	}
	kv, err := a.setupStreams(ctx)
	if err != nil {
		return err
	}
	var consumer jetstream.Consumer
	err = natsembed.Retry(ctx, "create consumer "+streams.Committer, func(ctx context.Context) error {
		consumer, err = a.js.CreateOrUpdateConsumer(ctx, streams.Visits, consumerConfig(a.cfg.Committer))
		return err
	})
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.committer = &committer{cfg: a.cfg.Committer, pool: a.pool, js: a.js, consumer: consumer,
		logger: a.logger.With("component", "committer"), metrics: newCommitMetrics(),
		awaitingReceipt: map[string]struct{}{}}
	pub := &publisher{pool: a.pool, kv: kv, logger: a.logger.With("component", "publisher")}
	a.goRun(func() { a.committer.run(runCtx) })
	a.goRun(func() { pub.run(runCtx) })
	if err := a.startStatus(runCtx); err != nil {
		return err
	}

	a.logger.Info("appliance started", "domain", a.cfg.NATS.Domain, "gateways", a.cfg.NATS.GatewayURLs)
	return nil
}

func (a *Appliance) goRun(fn func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		fn()
	}()
}

func (a *Appliance) openDatabase(ctx context.Context) error {
	dsn, err := a.cfg.Database.databaseURL()
	if err != nil {
		return err
	}
	poolCfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("parse database.url: %w", err)
	}
	poolCfg.MaxConns = a.cfg.Database.MaxConns
	a.pool, err = pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("create database pool: %w", err)
	}

	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.pool.Ping(pingCtx); err != nil {
		a.logger.Warn("database unreachable at start; visits wait in the stream until it responds",
			"host", poolCfg.ConnConfig.Host, "error", err)
		return nil
	}
	version, err := CheckSchema(ctx, a.pool)
	if err != nil {
		return err
	}
	a.logger.Info("database connected", "host", poolCfg.ConnConfig.Host, "schema_version", version)
	return nil
}

func (a *Appliance) startNATS() error {
	// Gateway URLs with the link's TLS and credentials (leaflink.go).
	remotes, link, err := a.cfg.NATS.leafLink()
	if err != nil {
		return err
	}
	ns, err := natsembed.Start(natsembed.Options{
		Name:        a.cfg.NATS.Name,
		Domain:      a.cfg.NATS.Domain,
		StoreDir:    filepath.Join(a.cfg.StateDir, "jetstream"),
		MaxStore:    a.cfg.NATS.MaxStore,
		ClientPort:  a.cfg.NATS.ClientPort,
		LeafRemotes: remotes,
		Link:        link,
		Cluster:     a.cfg.Cluster.NATSOptions(),
	}, a.logger)
	if err != nil {
		return err
	}
	a.ns = ns
	if a.nc, err = ns.Connect("appliance"); err != nil {
		return err
	}
	if a.js, err = jetstream.New(a.nc); err != nil {
		return fmt.Errorf("open JetStream context: %w", err)
	}
	return writeClientURL(a.cfg.StateDir, ns.ClientURL())
}

func (a *Appliance) setupStreams(ctx context.Context) (jetstream.KeyValue, error) {
	if err := natsembed.WaitJetStream(ctx, a.js); err != nil {
		return nil, err
	}
	replicas := a.cfg.Cluster.StreamReplicas()
	configs := []jetstream.StreamConfig{
		streams.SiteVisitsConfig(a.cfg.NATS.Tail),
		streams.SiteReceiptsConfig(30 * 24 * time.Hour),
		streams.SiteDeadLettersConfig(),
	}
	for _, cfg := range configs {
		cfg.Replicas = replicas
		err := natsembed.Retry(ctx, "create stream "+cfg.Name, func(ctx context.Context) error {
			_, err := a.js.CreateOrUpdateStream(ctx, cfg)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	directory := streams.SiteDirectoryConfig()
	directory.Replicas = replicas
	var kv jetstream.KeyValue
	err := natsembed.Retry(ctx, "create directory bucket", func(ctx context.Context) error {
		var err error
		kv, err = a.js.CreateOrUpdateKeyValue(ctx, directory)
		return err
	})
	if err != nil {
		return nil, err
	}
	return kv, nil
}

// Shutdown stops the committer and the publisher, then NATS and the pool.
// A batch that was fetched but not acked is redelivered after a restart.
func (a *Appliance) Shutdown(ctx context.Context) error {
	err := a.stop(ctx)
	a.logger.Info("appliance stopped")
	return err
}

func (a *Appliance) stop(ctx context.Context) error {
	errs := []error{a.stopStatus(ctx)}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.nc != nil {
		a.nc.Close()
	}
	if a.ns != nil {
		errs = append(errs, a.ns.Shutdown(ctx))
	}
	if a.pool != nil {
		a.pool.Close()
	}
	return errors.Join(errs...)
}

// LeafConnected reports whether the link to the gateway is up.
func (a *Appliance) LeafConnected() bool { return a.ns.LeafConnected() }

// Stats are the committer's counters since start.
type Stats struct {
	Committed   int64
	Duplicates  int64
	DeadLetters int64
}

// Stats returns the committer's counters.
func (a *Appliance) Stats() Stats {
	return Stats{
		Committed:   a.committer.committed.Load(),
		Duplicates:  a.committer.duplicates.Load(),
		DeadLetters: a.committer.deadLetters.Load(),
	}
}
