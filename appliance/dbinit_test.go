package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/internal/pgtest"
)

// testRoles returns role names unique to this test: roles are shared by
// every database of the cluster.
func testRoles(t *testing.T) DBRoles {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	dir := t.TempDir()
	roles := DBRoles{
		Owner:               "vr_owner_" + suffix,
		Runtime:             "vr_runtime_" + suffix,
		OwnerPasswordFile:   filepath.Join(dir, "owner.password"),
		RuntimePasswordFile: filepath.Join(dir, "runtime.password"),
	}
	for _, f := range []string{roles.OwnerPasswordFile, roles.RuntimePasswordFile} {
		if err := os.WriteFile(f, []byte("a password for "+filepath.Base(f)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return roles
}

// dropRolesAtEnd drops the test's roles when it ends, before the database
// is dropped: the roles own objects in it.
func dropRolesAtEnd(t *testing.T, dsn string, roles DBRoles) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("connect to drop roles: %v", err)
			return
		}
		defer admin.Close(ctx)
		for _, stmt := range []string{
			"DROP OWNED BY " + roles.Runtime + ", " + roles.Owner,
			"DROP ROLE " + roles.Runtime,
			"DROP ROLE " + roles.Owner,
		} {
			if _, err := admin.Exec(ctx, stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
}

// connectAs returns a pool on dsn's database as role.
func connectAs(t *testing.T, dsn, role string) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	pool, err := pgxpool.New(context.Background(), u.String())
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestDBInitRuntimeRoleLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	roles := testRoles(t)
	admin := connectAs(t, dsn, "postgres")
	dropRolesAtEnd(t, dsn, roles)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	if err := ApplyDBInit(ctx, admin, roles, logger); err != nil {
		t.Fatalf("db init: %v", err)
	}
	// A rerun, as after an upgrade, succeeds and changes nothing.
	if err := ApplyDBInit(ctx, admin, roles, logger); err != nil {
		t.Fatalf("db init again: %v", err)
	}

	runtime := connectAs(t, dsn, roles.Runtime)
	if _, err := CheckSchema(ctx, runtime); err != nil {
		t.Fatalf("schema check as the runtime role: %v", err)
	}
	var owner string
	if err := admin.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'visits'", Schema).Scan(&owner); err != nil {
		t.Fatalf("read owner of visits: %v", err)
	}
	if owner != roles.Owner {
		t.Errorf("visits is owned by %q, want %q", owner, roles.Owner)
	}

	tests := []struct {
		privilege, table string
		want             bool
	}{
		{"SELECT", "visits", true},
		{"INSERT", "visits", true},
		{"UPDATE", "visits", false},
		{"DELETE", "visits", false},
		{"TRUNCATE", "visits", false},
		{"INSERT", "visit_devices", true},
		{"DELETE", "visit_devices", false},
		{"INSERT", "discarded_visits", true},
		{"SELECT", "users", true},
		{"INSERT", "users", false},
		{"UPDATE", "users", false},
		{"SELECT", "clients", true},
		{"INSERT", "clients", false},
		{"SELECT", "devices", true},
		{"INSERT", "devices", false},
		{"INSERT", "goose_db_version", false},
	}
	for _, tt := range tests {
		t.Run(tt.privilege+" "+tt.table, func(t *testing.T) {
			var got bool
			err := runtime.QueryRow(ctx, "SELECT has_table_privilege(current_user, $1, $2)", Schema+"."+tt.table, tt.privilege).Scan(&got)
			if err != nil {
				t.Fatalf("read privilege: %v", err)
			}
			if got != tt.want {
				t.Errorf("runtime role has %s on %s = %v, want %v", tt.privilege, tt.table, got, tt.want)
			}
		})
	}

	if _, err := runtime.Exec(ctx, "CREATE TABLE visitrelay.scratch (id int)"); err == nil {
		t.Error("the runtime role created a table")
	}
	if _, err := runtime.Exec(ctx, "LISTEN visitrelay_directory"); err != nil {
		t.Errorf("LISTEN as the runtime role: %v", err)
	}
	var passwordSet bool
	if err := admin.QueryRow(ctx, "SELECT rolpassword LIKE 'SCRAM-SHA-256$4096:%' FROM pg_authid WHERE rolname = $1", roles.Runtime).Scan(&passwordSet); err != nil {
		t.Fatalf("read runtime password: %v", err)
	}
	if !passwordSet {
		t.Error("runtime role has no SCRAM-SHA-256 password")
	}
}

func TestDBInitPrintsSQL(t *testing.T) {
	var out bytes.Buffer
	roles := DBRoles{Owner: "visitrelay_owner", Runtime: "visitrelay"}
	if err := WriteDBInitSQL(&out, roles, "visits"); err != nil {
		t.Fatalf("write SQL: %v", err)
	}
	for _, want := range []string{
		`CREATE SCHEMA IF NOT EXISTS "visitrelay" AUTHORIZATION "visitrelay_owner";`,
		`GRANT SELECT, INSERT ON "visitrelay"."visits" TO "visitrelay";`,
		`GRANT SELECT ON "visitrelay"."users" TO "visitrelay";`,
		`\password visitrelay`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed SQL lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "PASSWORD '") {
		t.Error("printed SQL contains a password")
	}
	if err := WriteDBInitSQL(&out, DBRoles{Owner: "x; DROP", Runtime: "visitrelay"}, "visits"); err == nil {
		t.Error("a role name with SQL in it was accepted")
	}
}
