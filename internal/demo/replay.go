package demo

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/visitrelay/visitrelay/internal/load"
)

// demoUser is the customer's example salesman, id 23.
const demoUserID = "23"

// replay posts a working day of visits and prints the result. complete is
// false when a visit was not stored exactly once.
func replay(ctx context.Context, o Options, sys *system, stdout io.Writer, logger *slog.Logger) (complete bool, err error) {
	usersFile := filepath.Join(o.DataDir, "users.csv")
	username, password, err := findUser(usersFile, demoUserID)
	if err != nil {
		return false, err
	}
	// The directory reaches the gateway through the leafnode link a moment
	// after the appliance publishes it.
	want, err := countDemoRows(o.DataDir)
	if err != nil {
		return false, err
	}
	err = waitUntil(ctx, time.Minute, func() error { return directoryLoaded(sys.gatewayURL, want) })
	if err == nil {
		err = tryLogin(sys.gatewayURL, username, password)
	}
	if err != nil {
		return false, fmt.Errorf("log in as %s: %w; see %s", username, err, filepath.Join(sys.dir, "appliance.log"))
	}

	report, err := load.Execute(ctx, load.Options{
		GatewayURL: sys.gatewayURL, UsersFile: usersFile, Salesmen: o.Salesmen, Visits: o.Visits,
		WaitStored: 2 * time.Minute, Logger: logger,
	})
	if err != nil {
		return false, fmt.Errorf("replay a working day: %w", err)
	}
	// The load report ends with its own visits line; the demo prints one
	// that also counts the database's rows, so it drops the load's.
	var buf strings.Builder
	if err := report.Write(&buf); err != nil {
		return false, err
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if n := len(lines); n > 0 && strings.HasPrefix(lines[n-1], "visits:") {
		lines = lines[:n-1]
	}
	fmt.Fprintln(stdout, strings.Join(lines, "\n"))

	rows, contentDuplicates, err := countRows(ctx, sys.dsn)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(stdout, "database: %d visit rows, %d with the same salesman, clinic and time as another\n", rows, contentDuplicates)
	fmt.Fprintf(stdout, "page: %s/\n", sys.gatewayURL)
	fmt.Fprintf(stdout, "status: %s/\n", sys.statusURL)
	fmt.Fprintf(stdout, "gateway-status: %s/status\n", sys.gatewayURL)
	fmt.Fprintf(stdout, "login: %s %s\n", username, password)
	// The gateway writes its admin token at first start; any user name goes with it.
	if token, err := os.ReadFile(filepath.Join(sys.dir, "gateway", "admin.token")); err == nil {
		fmt.Fprintf(stdout, "status-login: admin %s\n", strings.TrimSpace(string(token)))
	}
	fmt.Fprintf(stdout, "psql: psql %q -c 'SELECT * FROM visits ORDER BY committed_at DESC LIMIT 5'\n", sys.dsn)

	duplicates := report.Duplicates + contentDuplicates
	fmt.Fprintf(stdout, "visits: sent=%d accepted=%d stored=%d duplicates=%d lost=%d\n",
		report.Sent, report.Accepted, report.Stored, duplicates, report.Lost)
	if report.Accepted != report.Sent || report.Stored != report.Accepted || duplicates != 0 || rows != report.Stored {
		return false, nil
	}
	return true, nil
}

func countRows(ctx context.Context, dsn string) (rows, duplicates int, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, 0, fmt.Errorf("connect to demo database: %w", err)
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `
SELECT count(*), count(*) - count(DISTINCT (user_id, client_id, visited_at)) FROM visits`).Scan(&rows, &duplicates)
	if err != nil {
		return 0, 0, fmt.Errorf("count visit rows: %w", err)
	}
	return rows, duplicates, nil
}

func findUser(path, id string) (username, password string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("open demo users: %w", err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return "", "", fmt.Errorf("read demo users %s: %w", path, err)
	}
	for _, r := range records[1:] {
		if len(r) == 4 && r[0] == id {
			return r[1], r[3], nil
		}
	}
	return "", "", fmt.Errorf("demo users %s: no user with id %q", path, id)
}

// directoryLoaded polls the gateway's readiness text until its copy of the
// directory holds every demo user, clinic and device. Trying to log in
// instead would count failures towards the login throttle.
func directoryLoaded(baseURL string, want [3]int) error {
	resp, err := http.Get(baseURL + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var got [3]int
	_, err = fmt.Sscanf(string(body), "ready: directory has %d users, %d clinics, %d devices", &got[0], &got[1], &got[2])
	if resp.StatusCode != http.StatusOK || err != nil || got != want {
		return fmt.Errorf("gateway directory not complete, want %d users, %d clinics, %d devices: %s",
			want[0], want[1], want[2], strings.TrimSpace(string(body)))
	}
	return nil
}

// countDemoRows returns the data rows of users.csv, clients.csv and
// devices.csv in dir.
func countDemoRows(dir string) ([3]int, error) {
	var counts [3]int
	for i, name := range []string{"users.csv", "clients.csv", "devices.csv"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return counts, fmt.Errorf("open demo data: %w", err)
		}
		records, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			return counts, fmt.Errorf("read demo data %s: %w", name, err)
		}
		counts[i] = len(records) - 1
	}
	return counts, nil
}

func tryLogin(baseURL, username, password string) error {
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, username, password)
	resp, err := http.Post(baseURL+"/api/v1/login", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login failed with status %d", resp.StatusCode)
	}
	return nil
}
