// Package pgtest starts throwaway PostgreSQL clusters for tests and the demo.
// It runs the real server binaries (initdb, postgres) from the machine's
// PostgreSQL installation. The server listens on 127.0.0.1 only and trusts
// every local connection, so it is never fit for production data.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// superuser is the role that initdb creates and that DSN connects as.
const superuser = "postgres"

// closeTimeout bounds the shutdown that Close runs.
const closeTimeout = 30 * time.Second

// Option changes how Start configures the cluster.
type Option func(*settings)

type settings struct {
	fsync bool
}

// WithFsync sets whether the server flushes its writes to disk (the fsync
// setting, on by default). Off is faster but a machine crash can corrupt the
// data, so it fits throwaway test data only. With fsync off initdb also
// skips its final flush.
func WithFsync(enabled bool) Option {
	return func(s *settings) { s.fsync = enabled }
}

// Cluster is a PostgreSQL server with its own data directory. Methods are
// safe for concurrent use.
type Cluster struct {
	logger *slog.Logger
	dir    string
	binDir string
	fsync  bool
	// owner is the OS user that runs initdb and postgres when this process
	// is root, because both exit with an error when run as root. It is nil
	// otherwise.
	owner *syscall.Credential
	port  int
	// base is the connection URL without a database name.
	base url.URL
	// adminDatabase is the database that AdminDSN names.
	adminDatabase string
	// external marks the server named by TEST_DATABASE_URL, which pgtest
	// neither starts nor stops.
	external bool

	mu sync.Mutex
	// server is the running postgres process, nil while stopped.
	server *server
}

// Start creates a cluster in dir/data (running initdb unless dir/data
// already holds one), starts postgres on a free port of 127.0.0.1 and waits
// until it accepts connections. The Unix socket and postgres.log are kept
// in dir too. When this process is root, dir is handed to the postgres OS
// user, which needs search access to every parent of dir.
func Start(ctx context.Context, dir string, logger *slog.Logger, options ...Option) (*Cluster, error) {
	chosen := settings{fsync: true}
	for _, option := range options {
		option(&chosen)
	}

	binDir, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve cluster directory %q: %w", dir, err)
	}
	owner, err := serverOwner()
	if err != nil {
		return nil, err
	}

	c := &Cluster{
		logger:        logger,
		dir:           dir,
		binDir:        binDir,
		fsync:         chosen.fsync,
		owner:         owner,
		adminDatabase: superuser,
	}
	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	if err := c.startOnFreePort(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// DSN returns the connection URL of database on this cluster, for example
// postgres://postgres@127.0.0.1:5433/app?sslmode=disable.
func (c *Cluster) DSN(database string) string {
	target := c.base
	target.Path = "/" + database
	return target.String()
}

// AdminDSN returns the DSN of the database to connect to for creating and
// dropping databases: postgres on a cluster that pgtest started, or the
// database named in TEST_DATABASE_URL.
func (c *Cluster) AdminDSN() string {
	return c.DSN(c.adminDatabase)
}

// Port returns the TCP port the server listens on.
func (c *Cluster) Port() int {
	return c.port
}

// Dir returns the cluster directory: data/, socket/ and postgres.log. It is
// "" for the server named by TEST_DATABASE_URL.
func (c *Cluster) Dir() string {
	return c.dir
}

// Start starts a stopped cluster again on the same port with the same data.
// It does nothing when the cluster is running. It fails when another
// process took the port in the meantime.
func (c *Cluster) Start(ctx context.Context) error {
	if c.external {
		return fmt.Errorf("start server %q: %w", c.base.Host, ErrExternalServer)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server != nil {
		return nil
	}

	srv, err := c.launch(ctx)
	if err != nil {
		return err
	}
	c.server = srv
	go c.watch(srv)
	c.logger.Info("postgres started", "port", c.port, "data_dir", c.dataDir(), "fsync", c.fsync)
	return nil
}

// Stop shuts the server down in fast mode, as `pg_ctl stop -m fast` does:
// open transactions roll back, a checkpoint is written and the data stays.
// When ctx ends first, Stop shuts down in immediate mode, which leaves crash
// recovery to the next start, and returns the context's error. It does
// nothing when the cluster is stopped.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.external {
		return fmt.Errorf("stop server %q: %w", c.base.Host, ErrExternalServer)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	srv := c.server
	if srv == nil {
		return nil
	}
	c.server = nil

	if err := srv.shutdown(ctx); err != nil {
		return fmt.Errorf("stop postgres on port %d: %w", c.port, err)
	}
	c.logger.Info("postgres stopped", "port", c.port)
	return nil
}

// Close stops the server and removes the cluster directory with its data.
// It does nothing for the server named by TEST_DATABASE_URL.
func (c *Cluster) Close() error {
	if c.external {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()

	stopErr := c.Stop(ctx)
	var removeErr error
	if err := os.RemoveAll(c.dir); err != nil {
		removeErr = fmt.Errorf("remove cluster directory %q: %w", c.dir, err)
	}
	return errors.Join(stopErr, removeErr)
}

// startOnFreePort picks a free port and starts the server on it. Another
// process may bind the port between the pick and the start, so a port
// conflict gets a few more tries with a new port.
func (c *Cluster) startOnFreePort(ctx context.Context) error {
	const attempts = 3
	var err error
	for range attempts {
		c.port, err = freePort()
		if err != nil {
			return err
		}
		c.base = url.URL{
			Scheme:   "postgres",
			User:     url.User(superuser),
			Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
			RawQuery: "sslmode=disable",
		}

		err = c.Start(ctx)
		if !errors.Is(err, errPortInUse) {
			return err
		}
		c.logger.Warn("postgres port taken, retrying on another port", "port", c.port)
	}
	return err
}

// watch logs an exit of postgres that Stop did not request.
func (c *Cluster) watch(srv *server) {
	<-srv.exited

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server != srv {
		return
	}
	c.server = nil
	c.logger.Warn("postgres exited unexpectedly", "port", c.port, "error", srv.err, "log", c.logPath())
}

func (c *Cluster) dataDir() string   { return filepath.Join(c.dir, "data") }
func (c *Cluster) socketDir() string { return filepath.Join(c.dir, "socket") }
func (c *Cluster) logPath() string   { return filepath.Join(c.dir, "postgres.log") }

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick free port on %q: %w", "127.0.0.1", err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	if err := listener.Close(); err != nil {
		return 0, fmt.Errorf("release port %d: %w", port, err)
	}
	return port, nil
}
