package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/load"
	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// BenchmarkSpike30PerSecond replays the customer's spike: salesmen posting
// 30 visits per second in total through the real HTTP API, one gateway and
// one appliance on this machine. It reports accept latency from the load
// generator, and post-to-stored latency from the database's own times
// (committed_at, the commit transaction's start, minus accepted_at). Run it
// with -benchtime=1x: each iteration is a whole load run.
func BenchmarkSpike30PerSecond(b *testing.B) {
	e := relaytest.Start(b)
	users := writeUsersFile(b)
	for b.Loop() {
		report, err := load.Execute(context.Background(), load.Options{
			GatewayURL: e.URL, UsersFile: users, Salesmen: 3, Visits: 300, Rate: 30,
			WaitStored: time.Minute, PollInterval: 200 * time.Millisecond,
		})
		if err != nil {
			b.Fatalf("load run: %v", err)
		}
		if err := report.Check(); err != nil {
			b.Fatalf("load check: %v", err)
		}
		b.ReportMetric(ms(report.PostLatency.P50), "accept-p50-ms")
		b.ReportMetric(ms(report.PostLatency.P99), "accept-p99-ms")
	}

	var p50, p99 float64
	err := e.Pool.QueryRow(context.Background(), `
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - accepted_at)) * 1000,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - accepted_at)) * 1000
FROM visits`).Scan(&p50, &p99)
	if err != nil {
		b.Fatalf("read post-to-stored latency: %v", err)
	}
	b.ReportMetric(p50, "stored-p50-ms")
	b.ReportMetric(p99, "stored-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeUsersFile writes the fixture users as a users CSV for the load
// generator.
func writeUsersFile(tb testing.TB) string {
	tb.Helper()
	content := "id,username,name,password\n"
	for username, id := range relaytest.Users {
		content += fmt.Sprintf("%s,%s,Fixture %s,%s\n", id, username, username, relaytest.Password)
	}
	path := filepath.Join(tb.TempDir(), "users.csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatalf("write users file: %v", err)
	}
	return path
}
