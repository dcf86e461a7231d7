package load

import (
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/visit"
)

func newSentVisits(base time.Time) []*tracked {
	return []*tracked{
		{visit: visit.Visit{VisitID: "a", ClientID: "101", DateTime: base}, accepted: true, ackedAt: base},
		{visit: visit.Visit{VisitID: "b", ClientID: "102", DateTime: base.Add(time.Hour)}, accepted: true, ackedAt: base},
		{visit: visit.Visit{VisitID: "c", ClientID: "103", DateTime: base.Add(2 * time.Hour)}},
	}
}

func TestCountDuplicates(t *testing.T) {
	base := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		entries []listedVisit
		want    int
	}{
		{"none", []listedVisit{{VisitID: "a", ClientID: "101", DateTime: base}, {VisitID: "b", ClientID: "102", DateTime: base.Add(time.Hour)}}, 0},
		{"repeated visitId", []listedVisit{{VisitID: "a", ClientID: "101", DateTime: base}, {VisitID: "a", ClientID: "101", DateTime: base}}, 1},
		{"same clinic and time under another id", []listedVisit{{VisitID: "a", ClientID: "101", DateTime: base}, {VisitID: "z", ClientID: "101", DateTime: base}}, 1},
		{"same instant in another zone", []listedVisit{{VisitID: "z", ClientID: "101", DateTime: base.In(time.FixedZone("CET", 3600))}}, 1},
		{"clinic and time of a rejected visit", []listedVisit{{VisitID: "y", ClientID: "103", DateTime: base.Add(2 * time.Hour)}}, 1},
		{"another visit of the same clinic", []listedVisit{{VisitID: "z", ClientID: "101", DateTime: base.Add(time.Minute)}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := countDuplicates(newSentVisits(base), tt.entries); got != tt.want {
				t.Errorf("countDuplicates = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestLedgerMarkStored(t *testing.T) {
	ackedAt := time.Now().Add(-3 * time.Second)
	sent := &ledger{visits: newSentVisits(ackedAt)}
	entries := []listedVisit{
		{VisitID: "a", Status: "stored"},
		{VisitID: "b", Status: "accepted"},
		{VisitID: "c", Status: "stored"},
	}
	sent.markStored(entries)
	first := sent.visits[0].storedLatency
	time.Sleep(10 * time.Millisecond)
	sent.markStored(entries)

	a, b, c := sent.visits[0], sent.visits[1], sent.visits[2]
	if !a.stored {
		t.Error("visit a is not marked stored although the list says stored")
	}
	if a.storedLatency < 3*time.Second {
		t.Errorf("visit a latency = %s, want at least the 3s since its acknowledgement", a.storedLatency)
	}
	if a.storedLatency != first {
		t.Errorf("visit a latency changed on the second poll from %s to %s", first, a.storedLatency)
	}
	if b.stored {
		t.Error("visit b is marked stored while the list says accepted")
	}
	if c.stored {
		t.Error("visit c is marked stored although the gateway never accepted it")
	}
	if sent.allStored() {
		t.Error("allStored is true while visit b is not stored")
	}
}

func TestLedgerListSince(t *testing.T) {
	base := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		visits []*tracked
		want   time.Time
		ok     bool
	}{
		{"nothing accepted", []*tracked{{acceptedAt: base}}, time.Time{}, false},
		{
			"earliest acceptance",
			[]*tracked{
				{accepted: true, acceptedAt: base.Add(time.Minute), ackedAt: base},
				{accepted: true, acceptedAt: base.Add(10 * time.Second), ackedAt: base},
				{accepted: false, acceptedAt: base.Add(-time.Hour), ackedAt: base},
			},
			base.Add(10*time.Second - sinceSlack),
			true,
		},
		{
			"acknowledgement without acceptance time",
			[]*tracked{{accepted: true, ackedAt: base}},
			base.Add(-time.Minute - sinceSlack),
			true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := &ledger{visits: tt.visits}
			got, ok := sent.listSince()
			if ok != tt.ok {
				t.Fatalf("listSince ok = %t, want %t", ok, tt.ok)
			}
			if ok && !got.Equal(tt.want) {
				t.Errorf("listSince = %s, want %s", got, tt.want)
			}
		})
	}
}
