package relaytest

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/visitrelay/visitrelay/appliance"
)

// seedDirectory adds the fixture users, clinics 101 to 110 and devices 1 to
// 10, through the same code paths as the admin commands where they exist.
func seedDirectory(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	for username, id := range Users {
		if err := appliance.AddUser(ctx, pool, id, username, "Fixture "+username, Password); err != nil {
			t.Fatalf("add fixture user: %v", err)
		}
	}
	for i := 101; i <= 110; i++ {
		_, err := pool.Exec(ctx, "INSERT INTO clients (id, name, city) VALUES ($1, $2, 'Graz')",
			fmt.Sprint(i), fmt.Sprintf("Praxis %d", i))
		if err != nil {
			t.Fatalf("add fixture clinic: %v", err)
		}
	}
	for i := 1; i <= 10; i++ {
		_, err := pool.Exec(ctx, "INSERT INTO devices (id, name) VALUES ($1, $2)", i, fmt.Sprintf("Device %d", i))
		if err != nil {
			t.Fatalf("add fixture device: %v", err)
		}
	}
	if _, err := pool.Exec(ctx, "SELECT pg_notify('visitrelay_directory', '')"); err != nil {
		t.Fatalf("notify directory: %v", err)
	}
}
