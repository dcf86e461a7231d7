package faulttest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// maxReported bounds how many single visits one check lists in a failure.
const maxReported = 10

// Result counts what became of a scenario's visits.
type Result struct {
	// Posted is the number of visits posted at least once.
	Posted int
	// Acknowledged is the number of visits that got a 201 or 200 response.
	Acknowledged int
	// Stored is the number of posted visits with a row in the database.
	Stored int
	// Duplicates is the number of rows that no posted visit accounts for,
	// plus the visits that the cloud stream holds more than once.
	Duplicates int
	// Lost is the number of acknowledged visits without a row.
	Lost int
}

// row is a row of the visits table with its visit_devices rows.
type row struct {
	visitID, userID, clientID    string
	visitedAt, acceptedAt        time.Time
	clientNotes, additionalNotes string
	proposed, sold               []int64 // in position order
}

// WaitStored waits until every visit the ledger holds as acknowledged has a
// row, and returns how long that took. It fails the test after timeout.
func (s *System) WaitStored(ledger *Ledger, timeout time.Duration) time.Duration {
	s.t.Helper()
	_, acks := ledger.snapshot()
	ids := make([]string, 0, len(acks))
	for id := range acks {
		ids = append(ids, id)
	}
	return s.WaitFor(fmt.Sprintf("all %d acknowledged visits are stored", len(ids)), timeout, func() bool {
		n, err := s.countStored(ids)
		return err == nil && n == len(ids)
	})
}

// countStored returns how many of ids have a row. Errors are returned, not
// fatal, because the database may be down on purpose.
func (s *System) countStored(ids []string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err := s.Pool.QueryRow(ctx, "SELECT count(*) FROM visits WHERE visit_id = ANY($1::uuid[])", ids).Scan(&n)
	return n, err
}

// CountRows returns the number of rows in the visits table, or -1 when the
// database is unreachable.
func (s *System) CountRows() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := s.Pool.QueryRow(ctx, "SELECT count(*) FROM visits").Scan(&n); err != nil {
		return -1
	}
	return n
}

// Check compares the database with the ledger and logs the counts in one
// line. It fails the test unless every acknowledged visit has exactly one
// row with the posted content and the acknowledged acceptedAt. It also
// fails when a row matches no posted visit, when the cloud stream holds a
// visit twice, and when a response contradicted an earlier one.
func (s *System) Check(ledger *Ledger) Result {
	s.t.Helper()
	visits, acks := ledger.snapshot()
	rows := s.readRows()
	r := Result{Posted: len(visits), Acknowledged: len(acks)}

	var unexpected, mismatched, lost []string
	for id, got := range rows {
		v, posted := visits[id]
		if !posted {
			r.Duplicates++
			unexpected = append(unexpected, id)
			continue
		}
		r.Stored++
		if diff := compare(v, got); diff != "" {
			mismatched = append(mismatched, fmt.Sprintf("visit %s: %s", id, diff))
		}
		ack, acked := acks[id]
		if acked && !ack.AcceptedAt.Truncate(time.Microsecond).Equal(got.acceptedAt) {
			mismatched = append(mismatched, fmt.Sprintf("visit %s: acknowledged with acceptedAt %s, stored with accepted_at %s",
				id, ack.AcceptedAt.Format(time.RFC3339Nano), got.acceptedAt.Format(time.RFC3339Nano)))
		}
	}
	for id := range acks {
		if _, ok := rows[id]; !ok {
			r.Lost++
			lost = append(lost, id)
		}
	}
	cloudCopies := s.cloudDuplicates()
	r.Duplicates += len(cloudCopies)

	s.t.Logf("fault result %s: posted=%d acknowledged=%d stored=%d duplicates=%d lost=%d retried_requests=%d",
		s.t.Name(), r.Posted, r.Acknowledged, r.Stored, r.Duplicates, r.Lost, ledger.Retried())
	report(s.t, "acknowledged visits have no row", lost)
	report(s.t, "rows match no posted visit", unexpected)
	report(s.t, "visits are more than once in the cloud stream", cloudCopies)
	report(s.t, "stored visits differ from the posted ones", mismatched)
	report(s.t, "responses were rejections or contradicted an earlier response", ledger.Problems())
	return r
}

// report fails the test with up to maxReported items of a problem.
func report(t testing.TB, problem string, items []string) {
	t.Helper()
	if len(items) == 0 {
		return
	}
	slices.Sort(items)
	listed := items[:min(len(items), maxReported)]
	t.Errorf("%d %s:\n  %s", len(items), problem, strings.Join(listed, "\n  "))
}

// compare returns how the stored row differs from the posted visit, or "".
func compare(v Visit, got row) string {
	var diffs []string
	at, err := time.Parse(time.RFC3339Nano, v.DateTime)
	if err != nil {
		return fmt.Sprintf("posted dateTime %q does not parse: %v", v.DateTime, err)
	}
	sold := []int64{}
	for _, id := range v.ProposedDevices {
		if slices.Contains(v.SoldDevices, id) {
			sold = append(sold, id)
		}
	}
	check := func(field string, want, have any) {
		if fmt.Sprint(want) != fmt.Sprint(have) {
			diffs = append(diffs, fmt.Sprintf("%s %v, posted %v", field, have, want))
		}
	}
	check("user_id", v.UserID, got.userID)
	check("client_id", v.ClientID, got.clientID)
	check("visited_at", at.UTC().Format(time.RFC3339Nano), got.visitedAt.UTC().Format(time.RFC3339Nano))
	check("client_notes", v.ClientNotes, got.clientNotes)
	check("additional_notes", v.AdditionalNotes, got.additionalNotes)
	check("proposed devices", v.ProposedDevices, got.proposed)
	check("sold devices", sold, got.sold)
	return strings.Join(diffs, "; ")
}

// readRows returns every row of the visits table with its devices, by
// visitId.
func (s *System) readRows() map[string]row {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := s.Pool.Query(ctx, `
SELECT v.visit_id::text, v.user_id, v.client_id, v.visited_at, v.accepted_at,
       v.client_notes, v.additional_notes,
       coalesce(array_agg(d.device_id ORDER BY d.position) FILTER (WHERE d.device_id IS NOT NULL), '{}'),
       coalesce(array_agg(d.device_id ORDER BY d.position) FILTER (WHERE d.sold), '{}')
FROM visits v LEFT JOIN visit_devices d USING (visit_id)
GROUP BY v.visit_id`)
	if err != nil {
		s.t.Fatalf("read stored visits: %v", err)
	}
	list, err := pgx.CollectRows(rows, func(scan pgx.CollectableRow) (row, error) {
		var r row
		err := scan.Scan(&r.visitID, &r.userID, &r.clientID, &r.visitedAt, &r.acceptedAt,
			&r.clientNotes, &r.additionalNotes, &r.proposed, &r.sold)
		return r, err
	})
	if err != nil {
		s.t.Fatalf("read stored visits: %v", err)
	}
	byID := make(map[string]row, len(list))
	for _, r := range list {
		byID[r.visitID] = r
	}
	return byID
}

// cloudDuplicates returns the subjects that the gateway's VISITS stream
// holds more than once. Each visit has its own subject, so a second message
// on one means the gateway accepted a visit twice.
func (s *System) cloudDuplicates() []string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := s.cloudStreamInfo(ctx, jetstream.WithSubjectFilter("visits.>"))
	if err != nil {
		s.t.Errorf("count visits in the cloud stream: %v", err)
		return nil
	}
	var copies []string
	for subject, n := range info.State.Subjects {
		if n > 1 {
			copies = append(copies, fmt.Sprintf("%s: %d messages", subject, n))
		}
	}
	return copies
}

// CheckNoDeadLetters runs `visitrelay-appliance deadletters list` and fails
// the test unless it reports none. The appliance must be running.
func (s *System) CheckNoDeadLetters() {
	s.t.Helper()
	output, err := s.Admin("deadletters list")
	if err != nil {
		s.t.Errorf("list dead letters: %v", err)
		return
	}
	if strings.TrimSpace(output) != "no dead letters" {
		s.t.Errorf("deadletters list printed:\n%s\nwant no dead letters", output)
	}
}
