package load

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/visitrelay/visitrelay/internal/visit"
)

func TestWorkingWindow(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	at := func(day, hour, minute int) time.Time {
		return time.Date(2026, 3, day, hour, minute, 0, 0, zone)
	}
	tests := []struct {
		name      string
		now       time.Time
		wantStart time.Time
		wantEnd   time.Time
	}{
		{"afternoon ends now", at(10, 14, 30), at(10, 8, 0), at(10, 14, 30)},
		{"evening ends at close", at(10, 20, 0), at(10, 8, 0), at(10, 17, 0)},
		{"one hour in is enough", at(10, 9, 0), at(10, 8, 0), at(10, 9, 0)},
		{"early morning uses yesterday", at(10, 8, 30), at(9, 8, 0), at(9, 17, 0)},
		{"night uses yesterday", at(10, 3, 0), at(9, 8, 0), at(9, 17, 0)},
		{"first of month uses last month", at(1, 6, 0), time.Date(2026, 2, 28, 8, 0, 0, 0, zone), time.Date(2026, 2, 28, 17, 0, 0, 0, zone)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := workingWindow(tt.now)
			if !start.Equal(tt.wantStart) || !end.Equal(tt.wantEnd) {
				t.Errorf("workingWindow(%s) = %s, %s, want %s, %s", tt.now, start, end, tt.wantStart, tt.wantEnd)
			}
		})
	}
}

// testDirectory is a clinic list and device catalog shaped like the demo's.
func testDirectory(clients, devices int) lookups {
	var d lookups
	for i := range clients {
		d.Clients = append(d.Clients, lookupClient{ID: strconv.Itoa(101 + i), Name: "Praxis " + strconv.Itoa(i), City: "Graz"})
	}
	for i := range devices {
		d.Devices = append(d.Devices, lookupDevice{ID: int64(i + 1), Name: "Device " + strconv.Itoa(i)})
	}
	return d
}

// directorySet implements visit.Directory over lookups.
type directorySet lookups

func (d directorySet) HasClient(id string) bool {
	return slices.ContainsFunc(d.Clients, func(c lookupClient) bool { return c.ID == id })
}

func (d directorySet) HasDevice(id int64) bool {
	return slices.ContainsFunc(d.Devices, func(c lookupDevice) bool { return c.ID == id })
}

func TestGenerateVisits(t *testing.T) {
	tests := []struct {
		name    string
		now     time.Time
		clients int
		devices int
		count   int
	}{
		{"working day", time.Date(2026, 3, 10, 15, 0, 0, 0, time.Local), 400, 40, 20},
		{"early morning", time.Date(2026, 3, 10, 7, 0, 0, 0, time.Local), 400, 40, 20},
		{"more visits than clinics", time.Date(2026, 3, 10, 15, 0, 0, 0, time.Local), 3, 40, 20},
		{"two devices only", time.Date(2026, 3, 10, 15, 0, 0, 0, time.Local), 400, 2, 20},
		{"millisecond slots", time.Date(2026, 3, 10, 15, 0, 0, 0, time.Local), 400, 40, 50000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			directory := testDirectory(tt.clients, tt.devices)
			visits, err := generateVisits(newTestRandom(), "23", directory, tt.count, tt.now)
			if err != nil {
				t.Fatalf("generateVisits: %v", err)
			}
			if len(visits) != tt.count {
				t.Fatalf("generated %d visits, want %d", len(visits), tt.count)
			}
			checkGeneratedVisits(t, visits, directory, tt.now)
		})
	}
}

func checkGeneratedVisits(t *testing.T, visits []visit.Visit, directory lookups, now time.Time) {
	t.Helper()
	start, _ := workingWindow(now)
	visitIDs := make(map[string]bool)
	clinics := make(map[string]bool)
	for i, v := range visits {
		if visitIDs[v.VisitID] {
			t.Errorf("visit %d repeats visitId %s", i, v.VisitID)
		}
		visitIDs[v.VisitID] = true
		if !v.DateTime.Before(now) {
			t.Errorf("visit %d dateTime %s is not before now %s", i, v.DateTime, now)
		}
		if v.DateTime.Before(start) {
			t.Errorf("visit %d dateTime %s is before the working day starts at %s", i, v.DateTime, start)
		}
		if i > 0 && !v.DateTime.After(visits[i-1].DateTime) {
			t.Errorf("visit %d dateTime %s is not after the previous %s", i, v.DateTime, visits[i-1].DateTime)
		}
		if i < len(directory.Clients) && clinics[v.ClientID] {
			t.Errorf("visit %d repeats clinic %s while unused clinics remain", i, v.ClientID)
		}
		clinics[v.ClientID] = true
		checkDevices(t, i, v)
		if v.UserID != "23" {
			t.Errorf("visit %d userId = %q, want 23", i, v.UserID)
		}
	}
	// The real decoder and validator check the first 50 visits, which is
	// enough to show that the payload's shape is right.
	for _, v := range visits[:min(len(visits), 50)] {
		checkAcceptedByValidator(t, v, directory, now)
	}
}

func checkDevices(t *testing.T, i int, v visit.Visit) {
	t.Helper()
	if len(v.ProposedDevices) < 1 || len(v.ProposedDevices) > maxProposedDevices {
		t.Errorf("visit %d proposes %d devices, want 1 to %d", i, len(v.ProposedDevices), maxProposedDevices)
	}
	proposed := make(map[int64]bool)
	for _, id := range v.ProposedDevices {
		if proposed[id] {
			t.Errorf("visit %d proposes device %d twice", i, id)
		}
		proposed[id] = true
	}
	if v.SoldDevices == nil {
		t.Errorf("visit %d soldDevices is nil, want an empty array", i)
	}
	sold := make(map[int64]bool)
	for _, id := range v.SoldDevices {
		if !proposed[id] {
			t.Errorf("visit %d sold device %d that it did not propose", i, id)
		}
		if sold[id] {
			t.Errorf("visit %d sold device %d twice", i, id)
		}
		sold[id] = true
	}
}

func checkAcceptedByValidator(t *testing.T, v visit.Visit, directory lookups, now time.Time) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal visit: %v", err)
	}
	decoded, err := visit.Decode(body)
	if err != nil {
		t.Fatalf("visit.Decode(%s): %v", body, err)
	}
	if err := visit.Validate(decoded, "23", directorySet(directory), now); err != nil {
		t.Errorf("visit.Validate(%s): %v", body, err)
	}
}

func TestGenerateVisitsSameSeedSameContent(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 0, 0, 0, time.Local)
	first, err := generateVisits(newTestRandom(), "23", testDirectory(400, 40), 20, now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := generateVisits(newTestRandom(), "23", testDirectory(400, 40), 20, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		a, b := first[i], second[i]
		a.VisitID, b.VisitID = "", ""
		if a.Hash() != b.Hash() {
			t.Errorf("visit %d differs between two runs with the same seed", i)
		}
	}
}

func TestGenerateVisitsErrors(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 0, 0, 0, time.Local)
	tests := []struct {
		name      string
		directory lookups
		count     int
	}{
		{"no clinics", testDirectory(0, 40), 20},
		{"no devices", testDirectory(400, 0), 20},
		{"more visits than milliseconds", testDirectory(400, 40), 1_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := generateVisits(newTestRandom(), "23", tt.directory, tt.count, now); err == nil {
				t.Error("generateVisits returned no error")
			}
		})
	}
}
