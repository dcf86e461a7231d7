// Package gateway is the cloud side of visitrelay: the HTTP API that phones
// post visits to, and the embedded NATS hub whose JetStream stream holds each
// accepted visit until the appliance has pulled it over the leafnode link.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/directory"
	"github.com/visitrelay/visitrelay/internal/natsembed"
	"github.com/visitrelay/visitrelay/internal/streams"
)

// maxBody is the largest request body accepted. A visit is a few KiB at most.
const maxBody = 64 << 10

// Gateway is one running gateway node.
type Gateway struct {
	cfg    Config
	logger *slog.Logger

	ns       *natsembed.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	visits   jetstream.Stream
	dir      *directory.Cache
	signer   tokenSigner
	throttle *loginThrottle
	app      *fiber.App
	conns    *connTracker
	listener net.Listener
	cancel   context.CancelFunc
	served   chan error

	// HTTPS and leafnode link security, set up by setupTLS (tls.go): the
	// certificate source (nil in tls.mode off), the link's TLS and site
	// credentials, and the renewal timing that tests shorten.
	tls     *tlsService
	link    natsembed.LinkOptions
	renewal *renewalTiming

	statusParts // status page, /metrics and heartbeats (status_server.go)
}

// New returns a gateway for a validated config.
func New(cfg Config, logger *slog.Logger) *Gateway {
	return &Gateway{
		cfg:      cfg,
		logger:   logger,
		dir:      directory.NewCache(logger.With("component", "directory")),
		throttle: newLoginThrottle(10, 15*time.Minute),
	}
}

// Start brings up NATS, the streams, the directory and the HTTP server. On
// failure it undoes what it started.
func (g *Gateway) Start(ctx context.Context) (err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	key, err := loadOrCreateKey(g.cfg.keyFile())
	if err != nil {
		return err
	}
	g.signer = tokenSigner{key: key}

	if err := g.setupTLS(); err != nil {
		return err
	}
	undo = append(undo, func() { _ = g.tls.shutdown(context.Background()) })

	if err := g.startNATS(); err != nil {
		return err
	}
	undo = append(undo, func() { g.nc.Close(); g.ns.Server.Shutdown() })

	runCtx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	undo = append(undo, cancel)
	if err := g.setupStreams(ctx, runCtx); err != nil {
		return err
	}
	if err := g.startStatus(runCtx); err != nil {
		return err
	}

	return g.startHTTP()
}

func (g *Gateway) startNATS() error {
	leafHost, leafPort, err := splitHostPort(g.cfg.NATS.LeafListen)
	if err != nil {
		return fmt.Errorf("parse nats.leafListen: %w", err)
	}
	ns, err := natsembed.Start(natsembed.Options{
		Name:       g.cfg.NATS.Name,
		Domain:     streams.CloudDomain,
		StoreDir:   filepath.Join(g.cfg.StateDir, "jetstream"),
		MaxStore:   g.cfg.NATS.MaxStore,
		ClientPort: g.cfg.NATS.ClientPort,
		LeafHost:   leafHost,
		LeafPort:   leafPort,
		Link:       g.link, // leafnode TLS and site credentials (leafauth.go)
		Cluster:    g.cfg.Cluster.NATSOptions(),
	}, g.logger)
	if err != nil {
		return err
	}
	g.ns = ns
	g.nc, err = ns.Connect("gateway")
	if err != nil {
		ns.Server.Shutdown()
		return err
	}
	g.js, err = jetstream.New(g.nc)
	if err != nil {
		g.nc.Close()
		ns.Server.Shutdown()
		return fmt.Errorf("open JetStream context: %w", err)
	}
	return nil
}

func (g *Gateway) startHTTP() error {
	g.app = g.newApp()
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; set listen to a free address", g.cfg.Listen, err)
	}
	g.listener = ln
	// HTTPS and the HTTP redirect listener, unless tls.mode is off (tls.go).
	if ln, err = g.wrapTLS(ln); err != nil {
		g.listener.Close()
		return err
	}
	g.conns = newConnTracker()
	ln = g.conns.wrap(ln)
	g.served = make(chan error, 1)
	go func() { g.served <- g.app.Listener(ln) }()
	g.logger.Info("gateway started", "http", g.URL(), "leafnode_port", g.LeafPort())
	return nil
}

func (g *Gateway) newApp() *fiber.App {
	fiberConfig := fiber.Config{
		AppName:               "visitrelay-gateway",
		BodyLimit:             maxBody,
		ErrorHandler:          handleError(g.logger),
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
	}
	// Forwarded headers count only from tls.trustedProxies (tls.go).
	g.cfg.TLS.applyProxyTrust(&fiberConfig)
	app := fiber.New(fiberConfig)
	app.Use(requestid.New())
	app.Get("/healthz", g.healthz)
	app.Get("/readyz", g.readyz)
	g.statusRoutes(app)
	salesmanPage.mount(app)

	api := app.Group("/api/v1")
	api.Post("/login", g.countLogin, g.login)
	api.Use(g.authenticate)
	api.Get("/lookups", g.lookups)
	api.Post("/visits", g.countPost, g.postVisit)
	api.Get("/visits", g.listVisits)
	return app
}

func (g *Gateway) lookups(c *fiber.Ctx) error {
	body, etag := g.dir.Lookups()
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if c.Get(fiber.HeaderIfNoneMatch) == etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

func (g *Gateway) healthz(c *fiber.Ctx) error {
	if !g.ns.Running() || !g.nc.IsConnected() {
		return c.Status(fiber.StatusServiceUnavailable).SendString("nats server not running\n")
	}
	return c.SendString("ok\n")
}

// readyz reports ready only when JetStream answers, not merely when the
// listeners are open: recovery after a crash can take a while.
func (g *Gateway) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if _, err := g.visits.Info(ctx); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).SendString("visit stream not available: " + err.Error() + "\n")
	}
	if problems := g.readinessProblems(); len(problems) > 0 {
		return c.Status(fiber.StatusServiceUnavailable).SendString("not ready: " + strings.Join(problems, "; ") + "\n")
	}
	users, clients, devices := g.dir.Counts()
	return c.SendString(fmt.Sprintf("ready: directory has %d users, %d clinics, %d devices\n", users, clients, devices))
}

// HTTPAddr returns the address the HTTP server listens on.
func (g *Gateway) HTTPAddr() string { return g.listener.Addr().String() }

// LeafPort returns the port appliances dial for the leafnode link.
func (g *Gateway) LeafPort() int { return g.ns.LeafPort() }

// Directory returns the gateway's copy of the directory.
func (g *Gateway) Directory() *directory.Cache { return g.dir }

// StreamInfo returns the state of the stream name in a JetStream domain that
// the gateway reaches: its own (streams.CloudDomain), or the site's domain
// while the leafnode link is up. End-to-end tests read message counts from it.
func (g *Gateway) StreamInfo(ctx context.Context, domain, name string) (*jetstream.StreamInfo, error) {
	js, err := jetstream.NewWithDomain(g.nc, domain)
	if err != nil {
		return nil, fmt.Errorf("open JetStream domain %q: %w", domain, err)
	}
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s in domain %q: %w", name, domain, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read info of stream %s in domain %q: %w", name, domain, err)
	}
	return info, nil
}

// Shutdown stops taking requests, lets in-flight ones finish, and stops NATS.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var errs []error
	if g.app != nil {
		stopped := make(chan struct{})
		go g.conns.closeUnusedUntil(stopped)
		err := g.app.ShutdownWithContext(ctx)
		close(stopped)
		if err != nil {
			errs = append(errs, fmt.Errorf("stop http server: %w", err))
		}
	}
	errs = append(errs, g.tls.shutdown(ctx))
	if g.cancel != nil {
		g.cancel()
	}
	if g.nc != nil {
		g.nc.Close()
	}
	if g.ns != nil {
		errs = append(errs, g.ns.Shutdown(ctx))
	}
	g.logger.Info("gateway stopped")
	return errors.Join(errs...)
}

// Done returns a channel that receives the HTTP server's error if it stops
// on its own.
func (g *Gateway) Done() <-chan error { return g.served }

func splitHostPort(addr string) (string, int, error) {
	if addr == "" {
		return "", 0, nil
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number", portText)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}
