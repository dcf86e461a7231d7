package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/streams"
)

// runTrace is the trace command: it connects to the running appliance's
// loopback NATS server, found through the URL file in the state
// directory, and prints where the visit is. With asJSON it prints the
// trace as /trace.json does.
func runTrace(ctx context.Context, cfg Config, pool *pgxpool.Pool, rest []string, asJSON bool, stdout io.Writer) error {
	if len(rest) != 1 {
		return fmt.Errorf("trace: expected one VISIT_ID, got %d\n%s", len(rest), usage)
	}
	nc, err := ConnectRunning(cfg.StateDir)
	if err != nil {
		return err
	}
	defer nc.Close()
	site, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open JetStream context: %w", err)
	}
	cloud, err := jetstream.NewWithDomain(nc, streams.CloudDomain)
	if err != nil {
		return fmt.Errorf("open JetStream domain %q: %w", streams.CloudDomain, err)
	}

	tr, err := tracer{site: site, cloud: cloud, pool: pool}.trace(ctx, rest[0])
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(tr)
	}
	return writeTrace(stdout, tr)
}

// writeTrace prints a trace as a summary line and a table of steps.
func writeTrace(w io.Writer, tr Trace) error {
	fmt.Fprintf(w, "visit %s: %s\n\n", tr.VisitID, tr.Summary)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATE\tAT\tDETAIL")
	for _, s := range tr.Steps {
		at := "-"
		if s.At != nil {
			at = stamp(s.At)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Title, s.State, at, s.Detail)
	}
	return tw.Flush()
}
