package appliance

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/internal/config"
)

// dbInitFlags are the flags of db init.
type dbInitFlags struct {
	roles    DBRoles
	apply    bool
	adminURL string
}

func addDBInitFlags(fs *flag.FlagSet) *dbInitFlags {
	f := &dbInitFlags{}
	fs.StringVar(&f.roles.Owner, "owner", "visitrelay_owner", "name of the owner role, which runs migrations and admin commands (db init)")
	fs.StringVar(&f.roles.Runtime, "runtime", "visitrelay", "name of the runtime role in database.url (db init)")
	fs.StringVar(&f.roles.OwnerPasswordFile, "owner-password-file", "", "file with the owner role's password; $CREDENTIALS_DIRECTORY/NAME reads a systemd credential (db init -apply)")
	fs.StringVar(&f.roles.RuntimePasswordFile, "runtime-password-file", "", "file with the runtime role's password (db init -apply)")
	fs.BoolVar(&f.apply, "apply", false, "run the SQL instead of printing it (db init)")
	fs.StringVar(&f.adminURL, "admin-url", "", "PostgreSQL URL of a role that may create roles, without a password: use PGPASSWORD, PGPASSFILE or peer authentication (db init -apply; default database.url)")
	return f
}

// runDBInit prints the SQL of the database roles, or with -apply runs it
// together with the migrations.
func runDBInit(ctx context.Context, cfg Config, flags *dbInitFlags, stdio IO) error {
	if !flags.apply {
		database, err := databaseName(cfg.Database.URL)
		if err != nil {
			return err
		}
		return WriteDBInitSQL(stdio.Stdout, flags.roles, database)
	}

	adminURL := flags.adminURL
	if adminURL == "" {
		adminURL = cfg.Database.URL
	}
	if u, err := url.Parse(adminURL); err == nil && u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			return fmt.Errorf("db init: -admin-url must not contain a password; use PGPASSWORD, PGPASSFILE or peer authentication")
		}
	}
	pool, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to database as admin: %w", err)
	}
	defer pool.Close()
	logger := config.Log{Level: "info", Format: "text"}.NewLogger(stdio.Stderr)
	return ApplyDBInit(ctx, pool, flags.roles, logger)
}

// databaseName returns the database of a PostgreSQL URL.
func databaseName(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse database.url: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		name = u.Query().Get("dbname")
	}
	if name == "" {
		return "", fmt.Errorf("database.url %s names no database", u.Redacted())
	}
	return name, nil
}
