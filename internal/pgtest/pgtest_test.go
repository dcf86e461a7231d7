package pgtest_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/visitrelay/visitrelay/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestClusterRestartKeepsData(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	ctx := t.Context()
	dsn := cluster.DSN("postgres")
	port := cluster.Port()

	conn := connect(t, dsn)
	mustExec(t, conn, "CREATE TABLE visits (visit_id text PRIMARY KEY)")
	mustExec(t, conn, "INSERT INTO visits VALUES ('a')")
	if err := conn.Close(ctx); err != nil {
		t.Fatalf("close connection: %v", err)
	}

	if err := cluster.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		_ = conn.Close(ctx)
		t.Fatal("connect to stopped cluster: succeeded, expected an error")
	}

	if err := cluster.Start(ctx); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if cluster.Port() != port {
		t.Errorf("port after restart = %d, expected %d", cluster.Port(), port)
	}
	if got := countVisits(t, connect(t, dsn)); got != 1 {
		t.Errorf("visits after restart = %d, expected 1", got)
	}
}

func TestStartReusesDataDirectory(t *testing.T) {
	t.Parallel()
	first := pgtest.NewCluster(t)
	ctx := t.Context()
	mustExec(t, connect(t, first.DSN("postgres")), "CREATE TABLE visits (visit_id text PRIMARY KEY)")
	if err := first.Stop(ctx); err != nil {
		t.Fatalf("stop first cluster: %v", err)
	}

	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	second, err := pgtest.Start(ctx, first.Dir(), logger, pgtest.WithFsync(false))
	if err != nil {
		t.Fatalf("start on existing data directory: %v", err)
	}
	t.Cleanup(func() {
		if err := second.Stop(context.Background()); err != nil {
			t.Errorf("stop second cluster: %v", err)
		}
	})

	if got := countVisits(t, connect(t, second.DSN("postgres"))); got != 0 {
		t.Errorf("visits in reused cluster = %d, expected 0", got)
	}
}

func TestNewDatabaseIsolatedAndDropped(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("create", func(t *testing.T) {
		first := connect(t, pgtest.NewDatabase(t))
		second := connect(t, pgtest.NewDatabase(t))
		mustExec(t, first, "CREATE TABLE visits (visit_id text PRIMARY KEY)")

		var exists bool
		err := second.QueryRow(t.Context(), "SELECT to_regclass('visits') IS NOT NULL").Scan(&exists)
		if err != nil {
			t.Fatalf("look up table: %v", err)
		}
		if exists {
			t.Error("table created in one test database is visible in another")
		}
		if err := first.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatalf("read database name: %v", err)
		}
		// Cleanup must drop the database although this session is open.
	})

	var count int
	admin := connect(t, pgtest.Shared(t).AdminDSN())
	err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&count)
	if err != nil {
		t.Fatalf("count databases: %v", err)
	}
	if count != 0 {
		t.Errorf("database %q still exists after its test ended", name)
	}
}

func TestCreateDatabaseDuplicate(t *testing.T) {
	t.Parallel()
	admin := pgtest.Shared(t).AdminDSN()
	ctx := t.Context()
	name := "t_duplicate_check"
	t.Cleanup(func() {
		if err := pgtest.DropDatabase(context.Background(), admin, name); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})

	if err := pgtest.CreateDatabase(ctx, admin, name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	if err := pgtest.CreateDatabase(ctx, admin, name); err == nil {
		t.Error("create existing database: succeeded, expected an error")
	}
}

func TestFindBinDirRejectsEmptyPGBinDir(t *testing.T) {
	t.Setenv("PG_BINDIR", t.TempDir())
	_, err := pgtest.FindBinDir()
	if !errors.Is(err, pgtest.ErrBinariesNotFound) {
		t.Errorf("FindBinDir error = %v, expected ErrBinariesNotFound", err)
	}
}

func TestExternalClusterRejectsStop(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("runs only with TEST_DATABASE_URL set")
	}
	err := pgtest.Shared(t).Stop(t.Context())
	if !errors.Is(err, pgtest.ErrExternalServer) {
		t.Errorf("Stop error = %v, expected ErrExternalServer", err)
	}
}

// connect opens a connection that is closed when the test ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func mustExec(t *testing.T, conn *pgx.Conn, statement string) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), statement); err != nil {
		t.Fatalf("run %q: %v", statement, err)
	}
}

func countVisits(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var count int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM visits").Scan(&count); err != nil {
		t.Fatalf("count visits: %v", err)
	}
	return count
}
