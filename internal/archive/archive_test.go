package archive

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visitrelay/visitrelay/internal/visit"
)

func record(seq uint64, id string) Record {
	return Record{Sequence: seq, Visit: visit.Envelope{
		Visit:       visit.Visit{VisitID: id, ClientID: "102", UserID: "23", ProposedDevices: []int64{1, 5}, SoldDevices: []int64{5}, DateTime: time.Date(2023, 9, 20, 15, 45, 30, 0, time.UTC), ClientNotes: "Grüße; DROP TABLE visits; <b>"},
		AcceptedAt:  time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC),
		ContentHash: "hash-" + id,
	}}
}

func TestAppendAndReadKeepEveryBatch(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	batches := [][]Record{{record(1, "a"), record(2, "b")}, {record(3, "c")}}
	for _, b := range batches {
		if err := Append(dir, day, b); err != nil {
			t.Fatalf("append: %v", err)
		}
	}

	var got []Record
	err := Read(filepath.Join(dir, "visits-2026-12-04.jsonl.gz"), func(line int, r Record, err error) error {
		if err != nil {
			t.Errorf("line %d: %v", line, err)
		}
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	want := append(batches[0], batches[1]...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records differ (-want +got):\n%s", diff)
	}
}

func TestPruneRemovesOnlyOldDays(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, name := range []string{"visits-2026-09-01.jsonl.gz", "visits-2026-09-10.jsonl.gz", "visits-2026-12-04.jsonl.gz", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Prune(dir, 90*24*time.Hour, now)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if diff := cmp.Diff([]string{"visits-2026-09-01.jsonl.gz"}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 3 {
		t.Errorf("%d files left, want 3", len(left))
	}
}
