package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// helperTimeout bounds starting a cluster and creating or dropping a
// database in the testing helpers. A cold initdb on a slow CI disk takes a
// few seconds.
const helperTimeout = 2 * time.Minute

// shared is the cluster of this test binary, started by the first Shared.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Shared returns the cluster that every test of this test binary shares,
// starting it on the first call with fsync off in a new directory under
// os.TempDir. When TEST_DATABASE_URL is set it returns that server instead,
// and Stop and Start on it fail with ErrExternalServer. Call Main from
// TestMain to stop the cluster when the tests end. Without Main the server
// still stops when the test binary exits, but its directory stays behind.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		shared.cluster, shared.err = startShared()
	})
	if shared.err != nil {
		failOrSkip(t, shared.err)
	}
	return shared.cluster
}

// NewDatabase creates a database named t_<random hex> on the Shared
// cluster and returns its DSN. The database is dropped when the test ends,
// with the sessions still connected to it.
func NewDatabase(t testing.TB) string {
	t.Helper()
	cluster := Shared(t)
	name := "t_" + randomHex(8)

	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	if err := CreateDatabase(ctx, cluster.AdminDSN(), name); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
		defer cancel()
		if err := DropDatabase(ctx, cluster.AdminDSN(), name); err != nil {
			t.Errorf("clean up test database: %v", err)
		}
	})
	return cluster.DSN(name)
}

// NewCluster starts a cluster of the test's own, with fsync off, that the
// test may stop and start. It is closed and its directory removed when the
// test ends. TEST_DATABASE_URL does not apply: the binaries must be there.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	// t.TempDir is not used because it is closed to the postgres OS user
	// that the server runs as when the tests run as root.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("create cluster directory: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))

	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	cluster, err := Start(ctx, dir, logger, WithFsync(false))
	if err != nil {
		_ = os.RemoveAll(dir)
		failOrSkip(t, err)
	}

	t.Cleanup(func() {
		if err := cluster.Close(); err != nil {
			t.Errorf("close test cluster: %v", err)
		}
	})
	return cluster
}

// Main runs the tests and then closes the Shared cluster, if one was
// started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The test binary exits with the code of m.Run, since Go passes it to
// os.Exit when TestMain returns.
func Main(m *testing.M) {
	m.Run()

	if shared.cluster == nil {
		return
	}
	if err := shared.cluster.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: close shared cluster: %v\n", err)
	}
}

// startShared starts the Shared cluster or, with TEST_DATABASE_URL set,
// describes that server.
func startShared() (*Cluster, error) {
	if raw := os.Getenv("TEST_DATABASE_URL"); raw != "" {
		return externalCluster(raw)
	}

	dir, err := os.MkdirTemp("", "pgtest-shared-")
	if err != nil {
		return nil, fmt.Errorf("create shared cluster directory: %w", err)
	}
	// The cluster outlives the test that starts it, so it cannot log
	// through that test. Warnings, such as postgres exiting, go to stderr.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	cluster, err := Start(ctx, dir, logger, WithFsync(false))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return cluster, nil
}

// externalCluster describes the running server at rawURL, a postgres://
// URL whose database is used to create and drop test databases.
func externalCluster(rawURL string) (*Cluster, error) {
	parsed, err := url.Parse(rawURL)
	if err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql") {
		return nil, fmt.Errorf("parse TEST_DATABASE_URL: expected postgres://user@host:port/database, got %q", redact(rawURL, parsed))
	}

	port := 5432
	if parsed.Port() != "" {
		port, err = strconv.Atoi(parsed.Port())
		if err != nil {
			return nil, fmt.Errorf("parse port %q of TEST_DATABASE_URL: %w", parsed.Port(), err)
		}
	}
	admin := parsed.Path
	if len(admin) > 0 && admin[0] == '/' {
		admin = admin[1:]
	}
	if admin == "" {
		admin = superuser
	}

	base := *parsed
	base.Path = ""
	return &Cluster{port: port, base: base, adminDatabase: admin, external: true}, nil
}

// redact returns rawURL with its password hidden, or a placeholder when
// rawURL does not parse and may hold one anywhere.
func redact(rawURL string, parsed *url.URL) string {
	if parsed == nil {
		return "<unparsable URL>"
	}
	return parsed.Redacted()
}

// failOrSkip ends the test on err. Missing binaries skip the test, except
// under CI=true, where a missing collaborator fails the run.
func failOrSkip(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrBinariesNotFound) {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v; CI=true requires PostgreSQL, so install it before the tests with `make ensure-postgres` (`make test` does), or set TEST_DATABASE_URL", err)
	}
	t.Skipf("%v; install PostgreSQL with `make ensure-postgres` (`make test` does it for you), point PG_BINDIR at its bin directory, or set TEST_DATABASE_URL=postgres://user@host:port/database", err)
}

// randomHex returns 2n lowercase hex digits from crypto/rand.
func randomHex(n int) string {
	buffer := make([]byte, n)
	_, _ = rand.Read(buffer)
	return hex.EncodeToString(buffer)
}
