package appliance

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaOutdated means the database schema is older than this binary.
var ErrSchemaOutdated = errors.New("database schema is older than this binary")

func newMigrator(pool *pgxpool.Pool) (*goose.Provider, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	// Closing the provider closes this sql.DB but not the pool behind it.
	db := stdlib.OpenDBFromPool(pool)
	provider, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create migrator: %w", err)
	}
	return provider, nil
}

// Migrate applies every pending migration, each in its own transaction.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	provider, err := newMigrator(pool)
	if err != nil {
		return err
	}
	defer provider.Close()

	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// CheckSchema returns ErrSchemaOutdated when migrations are pending, so that
// the appliance refuses to write to a schema it does not know.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) (version int64, err error) {
	provider, err := newMigrator(pool)
	if err != nil {
		return 0, err
	}
	defer provider.Close()

	current, target, err := provider.GetVersions(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if current < target {
		return current, fmt.Errorf("schema version %d, binary needs %d: %w; run visitrelay-appliance db migrate", current, target, ErrSchemaOutdated)
	}
	return current, nil
}
