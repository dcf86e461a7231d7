// Package demo runs the whole system on one machine: a throwaway
// PostgreSQL, the appliance and gateway binaries, the demo directory, and a
// working day of visits replayed through the load generator.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// Options configure a demo run. Run reads them from the environment.
type Options struct {
	// Dir holds the demo's state: database, stores, configs, logs. It is
	// emptied at start. Default .demo.
	Dir string
	// BinDir holds the built binaries. Default bin.
	BinDir string
	// DataDir holds users.csv, clients.csv and devices.csv. Default configs/demo.
	DataDir string
	// DatabaseURL is an existing database to use instead of a throwaway one.
	DatabaseURL string
	// Listen is the gateway's HTTP address. Default 127.0.0.1:8080, or a
	// free port when that one is taken.
	Listen string
	// Once stops after the replay, with an error unless every visit is stored.
	Once bool
	// Salesmen and Visits size the replay. Defaults 35 and 20.
	Salesmen, Visits int
}

// Run reads Options from the environment (DEMO_DIR, DEMO_DATABASE_URL,
// DEMO_LISTEN, DEMO_ONCE, DEMO_SALESMEN, DEMO_VISITS) and runs the demo.
func Run(ctx context.Context, stdout, stderr io.Writer) error {
	o := Options{
		Dir: envOr("DEMO_DIR", ".demo"), BinDir: envOr("DEMO_BIN", "bin"), DataDir: "configs/demo",
		DatabaseURL: os.Getenv("DEMO_DATABASE_URL"), Listen: os.Getenv("DEMO_LISTEN"),
		Once: os.Getenv("DEMO_ONCE") == "1", Salesmen: 35, Visits: 20,
	}
	var err error
	if o.Salesmen, err = envInt("DEMO_SALESMEN", 35); err != nil {
		return err
	}
	if o.Visits, err = envInt("DEMO_VISITS", 20); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return Execute(ctx, o, stdout, logger)
}

// Execute runs the demo with the given options.
func Execute(ctx context.Context, o Options, stdout io.Writer, logger *slog.Logger) error {
	if err := os.RemoveAll(o.Dir); err != nil {
		return fmt.Errorf("empty demo directory: %w", err)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("create demo directory: %w", err)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}

	dsn, stopDB, err := openDatabase(ctx, o, dir, logger)
	if err != nil {
		return err
	}
	defer stopDB()

	sys, err := startSystem(ctx, o, dir, dsn, logger)
	if err != nil {
		return err
	}
	defer sys.stop(logger)

	complete, err := replay(ctx, o, sys, stdout, logger)
	if err != nil {
		return err
	}
	if o.Once && !complete {
		return errIncomplete
	}
	if o.Once {
		return nil
	}
	fmt.Fprintln(stdout, "running; press Ctrl-C to stop")
	select {
	case <-ctx.Done():
		return nil
	case err := <-sys.exited:
		return err
	}
}

func openDatabase(ctx context.Context, o Options, dir string, logger *slog.Logger) (string, func(), error) {
	if o.DatabaseURL != "" {
		return o.DatabaseURL, func() {}, nil
	}
	cluster, err := pgtest.Start(ctx, filepath.Join(dir, "postgres"), logger)
	if err != nil {
		return "", nil, fmt.Errorf("start demo PostgreSQL: %w; set DEMO_DATABASE_URL to use an existing database", err)
	}
	if err := pgtest.CreateDatabase(ctx, cluster.AdminDSN(), "visitrelay"); err != nil {
		cluster.Close()
		return "", nil, err
	}
	return cluster.DSN("visitrelay"), func() {
		if err := cluster.Close(); err != nil {
			logger.Warn("stop demo PostgreSQL", "error", err)
		}
	}, nil
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envInt(name string, fallback int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: must be a positive whole number", name, v)
	}
	return n, nil
}

// freeAddress returns preferred if it can be bound, else a free loopback port.
func freeAddress(preferred string) (string, error) {
	if ln, err := net.Listen("tcp", preferred); err == nil {
		ln.Close()
		return preferred, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// errIncomplete means the replay did not store every visit exactly once.
var errIncomplete = errors.New("demo replay incomplete")

func waitUntil(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
