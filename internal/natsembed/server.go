// Package natsembed starts the nats-server that each visitrelay binary embeds
// and connects to it in-process.
package natsembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options are the settings both sides need. Each side fills in its own.
type Options struct {
	// Name is the server name, shown in logs and in leafnode link state.
	Name string
	// Domain is the JetStream domain: "cloud" for the gateway, the site's
	// own name on-prem. Each side needs its own so that streams on either
	// side are addressed separately across the leafnode link.
	Domain string
	// StoreDir is the JetStream file store directory.
	StoreDir string
	// MaxStore caps the bytes JetStream may use on disk; 0 means no cap.
	MaxStore int64
	// ClientHost and ClientPort are the NATS client listener. The listener
	// stays on loopback: the binaries connect in-process, and embedded
	// cluster routes need a client listener.  Port -1 picks a free port.
	ClientHost string
	ClientPort int
	// LeafHost and LeafPort open a leafnode listener (the gateway's side of
	// the link). LeafPort 0 opens none.
	LeafHost string
	LeafPort int
	// LeafRemotes are the hub URLs to dial (the appliance's side of the
	// link): the nodes of one gateway, tried in turn.
	// A URL's user and password, if any, are sent as leafnode credentials.
	LeafRemotes []*url.URL
	// Link security, both sides: TLS, credentials, websocket and proxy
	// settings for the leafnode link. Applied in link.go.
	Link LinkOptions
	// Cluster, when set, joins a cluster of nodes of the same side.
	Cluster *ClusterOptions
	// ReadyTimeout bounds how long Start waits for the server to accept
	// connections. JetStream recovery after a crash can take a while.
	ReadyTimeout time.Duration
}

// Server is an embedded nats-server with JetStream.
type Server struct {
	*server.Server
	opts   *server.Options
	logger *slog.Logger
}

// Start builds the server from opts, starts it and waits until it accepts
// connections and JetStream is enabled.
func Start(opts Options, logger *slog.Logger) (*Server, error) {
	sopts := buildOptions(opts)
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("configure nats server %q: %w", opts.Name, err)
	}
	ns.SetLoggerV2(newLogAdapter(logger), false, false, false)
	ns.Start()

	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if !ns.ReadyForConnections(timeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats server %q: not ready after %s; check the store directory %q", opts.Name, timeout, opts.StoreDir)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats server %q: JetStream did not start; check the store directory %q", opts.Name, opts.StoreDir)
	}
	logger.Info("nats server started", "server", opts.Name, "domain", opts.Domain, "client_url", ns.ClientURL())
	return &Server{Server: ns, opts: sopts, logger: logger}, nil
}

func buildOptions(opts Options) *server.Options {
	sopts := &server.Options{
		ServerName:         opts.Name,
		Host:               opts.ClientHost,
		Port:               opts.ClientPort,
		NoSigs:             true,
		JetStream:          true,
		JetStreamDomain:    opts.Domain,
		StoreDir:           opts.StoreDir,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  opts.MaxStore,
		// Every acknowledged write is fsynced before the ack. By default
		// JetStream syncs every two minutes, and an acknowledged visit
		// could vanish on power loss.
		SyncAlways: true,
	}
	if sopts.Host == "" {
		sopts.Host = "127.0.0.1"
	}
	if sopts.Port == 0 {
		sopts.Port = server.RANDOM_PORT
	}
	if sopts.JetStreamMaxStore == 0 {
		sopts.JetStreamMaxStore = -1
	}
	if opts.LeafPort != 0 {
		sopts.LeafNode.Host = opts.LeafHost
		sopts.LeafNode.Port = opts.LeafPort
		// Sites reach the hub only through the URL in their own config,
		// such as a DNS name, a port forward or a proxy. By default the hub
		// sends its listener's own addresses to every site, which then
		// reconnects to them too, bypassing that URL, although they may be
		// unreachable from the site.
		sopts.LeafNode.NoAdvertise = true
	}
	// One remote with every URL: the leaf keeps one link and fails over
	// between the hub's nodes. A remote per URL would open a link to each
	// node of a gateway cluster at once.
	if len(opts.LeafRemotes) > 0 {
		sopts.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: opts.LeafRemotes}}
	}
	// Reconnect quickly after a cut link: visits wait in the cloud until it
	// is back.
	sopts.LeafNode.ReconnectInterval = 2 * time.Second
	// Log a failing leafnode dial on the first attempt and then every 20th,
	// about once a minute at that interval, rather than at every attempt
	// of a reconnect and every 3600th of a first connect (the defaults of
	// nats-server v2.15.3). The skipped ones are logged at debug level.
	sopts.ConnectErrorReports = 20
	sopts.ReconnectErrorReports = 20
	applyLink(sopts, opts.Link)
	applyCluster(sopts, opts.Cluster)
	return sopts
}

// Connect opens an in-process client connection that never gives up
// reconnecting, because the server lives as long as the process.
func (s *Server) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("",
		nats.InProcessServer(s.Server),
		nats.Name(name),
		// Credentials of the in-process user, set when the server requires
		// credentials for the leafnode link (link.go).
		nats.UserInfo(inProcessCredentials(s.opts)),
		nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			s.logger.Warn("nats client error", "client", name, "subject", subject, "error", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect in-process client %q: %w", name, err)
	}
	return nc, nil
}

// LeafPort returns the port of the leafnode listener, or 0 if none is open.
// The server writes the chosen port back into its options when it was -1.
func (s *Server) LeafPort() int {
	if s.opts.LeafNode.Port < 0 {
		return 0
	}
	return s.opts.LeafNode.Port
}

// LeafConnected reports whether at least one leafnode link is up.
func (s *Server) LeafConnected() bool {
	return s.NumLeafNodes() > 0
}

// Shutdown stops the server and waits for it to finish, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.Server.Shutdown()
		s.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		s.logger.Info("nats server stopped", "server", s.Name())
		return nil
	case <-ctx.Done():
		return errors.Join(errors.New("stop nats server: timed out"), ctx.Err())
	}
}
