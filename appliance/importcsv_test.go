package appliance

import (
	"context"
	"github.com/jackc/pgx/v5/pgxpool"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "import.csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestImportClientsStoresEveryRow(t *testing.T) {
	pool := newMigratedPool(t)
	path := writeFile(t, "id,name,city\n102,Praxis Dr. Keller,Graz\n103,\"Reha-Zentrum \"\"Bergblick\"\", Haus B\",Zürich\n")

	n, err := ImportClients(context.Background(), pool, path)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if n != 2 {
		t.Errorf("imported %d rows, want 2", n)
	}
	var name, city string
	err = pool.QueryRow(context.Background(), "SELECT name, city FROM clients WHERE id = '103'").Scan(&name, &city)
	if err != nil {
		t.Fatalf("read clinic 103: %v", err)
	}
	if name != `Reha-Zentrum "Bergblick", Haus B` || city != "Zürich" {
		t.Errorf("clinic 103 stored as %q, %q", name, city)
	}
}

func TestImportRejectsBadFileWhole(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		content string
		want    []string
	}{
		{"clinic rows", "clients", "id,name,city\n101,Good,Graz\n1.2,Bad id,Wien\n103,,Linz\n101,Again,Graz\n",
			[]string{"line 3: id", "line 4: name", "line 5: id \"101\": repeats the id of line 2"}},
		{"wrong header", "clients", "id,name\n101,Good\n", []string{"line 1"}},
		{"device rows", "devices", "id,name,category\n1,Oximeter,monitoring\nx,Pump,infusion\n-3,Probe,imaging\n",
			[]string{"line 3: id \"x\"", "line 4: id \"-3\""}},
		{"user rows", "users", "id,username,name,password\n23,Anna.Berger,Anna,long enough pw\n24,eva,Eva,short\n",
			[]string{"line 2: username", "line 3: password"}},
		{"ragged row", "clients", "id,name,city\n101,Good,Graz\n102,Too,Many,Fields\n", []string{"line 3"}},
		{"parse and row problems together", "clients", "id,name,city\n101,,Graz\n102,Too,Many,Fields\n",
			[]string{"line 2: name", "line 3"}},
	}
	importers := map[string]func(context.Context, *pgxpool.Pool, string) (int, error){
		"clients": ImportClients, "devices": ImportDevices, "users": ImportUsers,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newMigratedPool(t)
			_, err := importers[tt.kind](context.Background(), pool, writeFile(t, tt.content))
			if err == nil {
				t.Fatal("import accepted a file with bad rows")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not mention %q:\n%v", want, err)
				}
			}
			var rows int
			if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+tt.kind).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != 0 {
				t.Errorf("%d rows imported from a rejected file, want none", rows)
			}
		})
	}
}
