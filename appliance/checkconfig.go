package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/internal/natsembed"
)

// linkProbeTimeout bounds the wait for a test leafnode link in
// check-config. A good link comes up within a second on a LAN (measured on
// loopback in the install test).
const linkProbeTimeout = 10 * time.Second

// checkConfig tests the connections of a valid config: the database (reach,
// schema version, role) and the gateway (a real leafnode link with the
// configured TLS and credentials). It writes one line per check and
// returns an error naming every failed one.
func checkConfig(ctx context.Context, cfg Config, path string, stdout io.Writer) error {
	fmt.Fprintf(stdout, "config %s: valid\n", path)
	var errs []error
	report := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(stdout, "FAIL %s: %v\n", what, err)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return
		}
		fmt.Fprintf(stdout, "ok   %s\n", what)
	}

	report("database "+redactURL(cfg.Database.URL)+" answers with a current schema", checkDatabaseConfig(ctx, cfg.Database, stdout))
	// Each gateway URL gets its own link, so that a wrong failover address
	// shows here rather than during a failover.
	for _, gatewayURL := range cfg.NATS.GatewayURLs {
		link := cfg.NATS
		link.GatewayURLs = []string{gatewayURL}
		report("leafnode link to "+gatewayURL+" opens", probeLink(link))
	}
	return errors.Join(errs...)
}

// checkDatabaseConfig connects as the appliance does, checks the schema
// version and warns about a role that has more rights than it needs.
func checkDatabaseConfig(ctx context.Context, db DatabaseConfig, stdout io.Writer) error {
	dsn, err := db.databaseURL()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("parse database.url: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	version, err := CheckSchema(ctx, pool)
	if err != nil {
		return err
	}

	var role string
	var superuser, ssl bool
	err = pool.QueryRow(ctx, `
SELECT current_user, r.rolsuper, coalesce((SELECT s.ssl FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()), false)
FROM pg_roles r WHERE r.rolname = current_user`).Scan(&role, &superuser, &ssl)
	if err != nil {
		return fmt.Errorf("read role: %w", err)
	}
	fmt.Fprintf(stdout, "     role %s, schema version %d, tls %v\n", role, version, ssl)
	if superuser {
		fmt.Fprintf(stdout, "warn role %s is a superuser; create a runtime role with visitrelay-appliance db init\n", role)
	}
	if !ssl && !strings.Contains(dsn, "host=/") && !strings.Contains(dsn, "@/") {
		fmt.Fprintln(stdout, "warn the database connection is not encrypted; add sslmode=verify-full to database.url")
	}
	return nil
}

// probeLink opens a leafnode link with the configured URLs, TLS and
// credentials from a throwaway NATS server, and reports the first error
// the link logs when it does not come up.
func probeLink(n NATSConfig) error {
	remotes, link, err := n.leafLink()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "visitrelay-check-")
	if err != nil {
		return fmt.Errorf("create temporary store: %w", err)
	}
	defer os.RemoveAll(dir)

	errs := &errorLog{}
	ns, err := natsembed.Start(natsembed.Options{
		Name:        "check-config",
		Domain:      "check_config",
		StoreDir:    dir,
		LeafRemotes: remotes,
		Link:        link,
	}, slog.New(errs))
	if err != nil {
		return err
	}
	defer ns.Shutdown(context.Background())

	deadline := time.Now().Add(linkProbeTimeout)
	for time.Now().Before(deadline) {
		if ns.LeafConnected() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first := errs.first(); first != "" {
		return fmt.Errorf("not connected after %s: %s", linkProbeTimeout, first)
	}
	return fmt.Errorf("not connected after %s; check the address and the firewall", linkProbeTimeout)
}

// errorLog is a slog handler that keeps the first error message.
type errorLog struct {
	mu      sync.Mutex
	message string
}

func (e *errorLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }

func (e *errorLog) Handle(_ context.Context, r slog.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.message == "" {
		e.message = r.Message
	}
	return nil
}

func (e *errorLog) WithAttrs([]slog.Attr) slog.Handler { return e }
func (e *errorLog) WithGroup(string) slog.Handler      { return e }

func (e *errorLog) first() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.message
}

// redactURL hides the password of a URL for display.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
