package pgtest

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// CreateDatabase creates the database name, connecting through adminDSN
// as a role that may create databases.
func CreateDatabase(ctx context.Context, adminDSN, name string) error {
	return execAdmin(ctx, adminDSN, name, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// DropDatabase drops the database name if it exists, ending the sessions
// still connected to it (WITH (FORCE), PostgreSQL 13 and later).
func DropDatabase(ctx context.Context, adminDSN, name string) error {
	return execAdmin(ctx, adminDSN, name, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// execAdmin runs one statement about the database name on its own
// connection, because CREATE and DROP DATABASE cannot run in a transaction.
// The DSN stays out of errors since it may hold a password.
func execAdmin(ctx context.Context, adminDSN, name, statement string) (err error) {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("connect to admin database for %q: %w", name, err)
	}
	defer func() {
		err = errors.Join(err, conn.Close(ctx))
	}()

	if _, err := conn.Exec(ctx, statement); err != nil {
		return fmt.Errorf("run %q: %w", statement, err)
	}
	return nil
}
