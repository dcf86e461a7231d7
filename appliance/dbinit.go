package appliance

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/internal/config"
)

// Schema is the PostgreSQL schema that db init creates for visitrelay's
// tables, owned by the owner role and first on both roles' search_path.
const Schema = "visitrelay"

// runtimeGrants are the privileges of the runtime role: the committer
// inserts visits and their devices and reads them back; the directory
// publisher reads users, clients and devices (and LISTENs, which needs no
// privilege); dead-letter commands record discarded visits; the start-up
// schema check reads the migration table. Nothing may be updated or deleted.
var runtimeGrants = []struct{ privileges, table string }{
	{"SELECT, INSERT", "visits"},
	{"SELECT, INSERT", "visit_devices"},
	{"SELECT, INSERT", "discarded_visits"},
	{"SELECT", "users"},
	{"SELECT", "clients"},
	{"SELECT", "devices"},
	{"SELECT", "goose_db_version"},
}

// DBRoles names the two roles that db init creates.
type DBRoles struct {
	// Owner owns the schema and its tables and runs migrations and the
	// admin commands (import, user). Default visitrelay_owner.
	Owner string
	// Runtime is the role in database.url that the running appliance
	// uses. Default visitrelay.
	Runtime string
	// OwnerPasswordFile and RuntimePasswordFile hold the roles' passwords;
	// each is optional. Only a SCRAM-SHA-256 verifier is sent to the
	// server, so the password appears in no statement or server log.
	OwnerPasswordFile   string
	RuntimePasswordFile string
}

var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (r DBRoles) validate() error {
	for _, name := range []string{r.Owner, r.Runtime} {
		if !roleName.MatchString(name) {
			return fmt.Errorf("db init: role name %q must be lower-case letters, digits and '_', starting with a letter or '_'", name)
		}
	}
	if r.Owner == r.Runtime {
		return fmt.Errorf("db init: the owner and runtime roles must differ, both are %q", r.Owner)
	}
	return nil
}

// rolesSQL returns the statements that create the roles and the schema, up
// to the point where migrations run. database is the database's name.
func (r DBRoles) rolesSQL(database string) []string {
	owner, runtime := ident(r.Owner), ident(r.Runtime)
	db, schema := ident(database), ident(Schema)
	var stmts []string
	for _, role := range []string{r.Owner, r.Runtime} {
		stmts = append(stmts, fmt.Sprintf(`DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN
        CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
END $$`, role, ident(role)))
	}
	return append(stmts,
		fmt.Sprintf("GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s, %s", db, owner, runtime),
		fmt.Sprintf("CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION %s", schema, owner),
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", schema, runtime),
		fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET search_path = %s", owner, db, schema),
		fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET search_path = %s", runtime, db, schema),
	)
}

// grantSQL returns the statements that give the runtime role its
// privileges on the migrated tables. It revokes everything first, so a
// rerun after an upgrade leaves exactly these grants.
func (r DBRoles) grantSQL() []string {
	runtime, schema := ident(r.Runtime), ident(Schema)
	stmts := []string{fmt.Sprintf("REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s", schema, runtime)}
	for _, g := range runtimeGrants {
		stmts = append(stmts, fmt.Sprintf("GRANT %s ON %s.%s TO %s", g.privileges, schema, ident(g.table), runtime))
	}
	return stmts
}

// WriteDBInitSQL writes the SQL script that a DBA runs in psql, connected
// to the appliance's database as a role that may create roles: the roles
// and schema first, then the migrations as the owner, then the grants.
func WriteDBInitSQL(w io.Writer, roles DBRoles, database string) error {
	if err := roles.validate(); err != nil {
		return err
	}
	fmt.Fprintf(w, `-- visitrelay database roles, for database %[1]s. Run in psql as a superuser
-- or a role with CREATEROLE, connected to %[1]s:  psql -d %[1]s -f roles.sql
-- Then set the passwords at psql's prompt, so that they appear on no
-- command line and in no file:  \password %[2]s  and  \password %[3]s
-- (or run db init -apply with -owner-password-file and -runtime-password-file).

`, database, roles.Owner, roles.Runtime)
	for _, stmt := range roles.rolesSQL(database) {
		fmt.Fprintf(w, "%s;\n", stmt)
	}
	fmt.Fprintf(w, `
-- Next, create the tables as the owner:
--   VISITRELAY_DATABASE_URL='postgres://%[1]s@HOST/%[2]s?sslmode=verify-full' \
--     PGPASSFILE=/root/.pgpass visitrelay-appliance db migrate
-- Then give the runtime role its privileges (rerun after every upgrade
-- whose release notes add a table):

`, roles.Owner, database)
	for _, stmt := range roles.grantSQL() {
		fmt.Fprintf(w, "%s;\n", stmt)
	}
	return nil
}

// ApplyDBInit creates the roles and the schema through admin, a pool
// connected as a role that may create roles, sets the passwords from the
// password files, runs the migrations as the owner and grants the runtime
// role its privileges. Every step can be rerun.
func ApplyDBInit(ctx context.Context, admin *pgxpool.Pool, roles DBRoles, logger *slog.Logger) error {
	if err := roles.validate(); err != nil {
		return err
	}
	var database string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&database); err != nil {
		return fmt.Errorf("read database name: %w", err)
	}
	if err := execAll(ctx, admin, roles.rolesSQL(database)); err != nil {
		return err
	}
	for role, file := range map[string]string{roles.Owner: roles.OwnerPasswordFile, roles.Runtime: roles.RuntimePasswordFile} {
		if file == "" {
			continue
		}
		password, err := config.ReadSecret("password file of role "+role, file)
		if err != nil {
			return err
		}
		verifier, err := scramVerifier(password)
		if err != nil {
			return err
		}
		if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", ident(role), verifier)); err != nil {
			return fmt.Errorf("set password of role %s: %w", role, err)
		}
		logger.Info("role password set", "role", role)
	}

	if err := migrateAsOwner(ctx, admin, roles, logger); err != nil {
		return err
	}
	logger.Info("database roles ready", "database", database, "owner", roles.Owner, "runtime", roles.Runtime, "schema", Schema)
	return nil
}

// migrateAsOwner runs the migrations and the grants on connections that
// act as the owner role, so that the owner owns every table it creates and
// grants on them itself.
func migrateAsOwner(ctx context.Context, admin *pgxpool.Pool, roles DBRoles, logger *slog.Logger) error {
	owner := roles.Owner
	cfg := admin.Config().Copy()
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, fmt.Sprintf("SET ROLE %s; SET search_path = %s", ident(owner), ident(Schema)))
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect as owner %s: %w", owner, err)
	}
	defer pool.Close()
	if err := Migrate(ctx, pool, logger); err != nil {
		return err
	}
	return execAll(ctx, pool, roles.grantSQL())
}

func execAll(ctx context.Context, pool *pgxpool.Pool, stmts []string) error {
	for _, stmt := range stmts {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("run %q: %w", firstLine(stmt), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// scramVerifier returns the SCRAM-SHA-256 verifier of password in the
// form PostgreSQL stores (RFC 5802 and RFC 7677, 4096 iterations), so that
// ALTER ROLE ... PASSWORD carries no clear-text password.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generate salt: %w", err)
	}
	const iterations = 4096
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, message string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(message))
	return mac.Sum(nil)
}
