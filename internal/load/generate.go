package load

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/visitrelay/visitrelay/internal/visit"
)

// Working hours in local time, as whole hours of the day.
const (
	workdayStartHour = 8
	workdayEndHour   = 17
)

// minWorkingWindow is the least part of today's working hours that must lie
// in the past before visits are dated today. Earlier in the day, they are
// spread over yesterday's working hours.
const minWorkingWindow = time.Hour

// maxProposedDevices bounds the devices proposed in one visit.
const maxProposedDevices = 4

// lookups is the clinic list and device catalog of GET /api/v1/lookups.
type lookups struct {
	Clients []lookupClient `json:"clients"`
	Devices []lookupDevice `json:"devices"`
}

type lookupClient struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	City string `json:"city"`
}

type lookupDevice struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// workingWindow returns the part of a working day, in now's location, over
// which visits are spread. The end never lies after now.
func workingWindow(now time.Time) (start, end time.Time) {
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	start = day.Add(workdayStartHour * time.Hour)
	end = day.Add(workdayEndHour * time.Hour)
	if now.Before(end) {
		end = now
	}
	if end.Sub(start) >= minWorkingWindow {
		return start, end
	}

	yesterday := day.AddDate(0, 0, -1)
	return yesterday.Add(workdayStartHour * time.Hour), yesterday.Add(workdayEndHour * time.Hour)
}

// generateVisits makes count visits for one salesman, dated in order across
// the working window and all before now. Each visit has its own visitId and
// dateTime. Clinics do not repeat while the clinic list has enough of them.
func generateVisits(random *rand.Rand, userID string, directory lookups, count int, now time.Time) ([]visit.Visit, error) {
	if len(directory.Clients) == 0 {
		return nil, errors.New("generate visits: the clinic list is empty")
	}
	if len(directory.Devices) == 0 {
		return nil, errors.New("generate visits: the device catalog is empty")
	}
	times, err := spreadTimes(random, now, count)
	if err != nil {
		return nil, err
	}

	clinics := random.Perm(len(directory.Clients))
	visits := make([]visit.Visit, count)
	for i := range visits {
		id, err := uuid.NewRandom()
		if err != nil {
			return nil, fmt.Errorf("generate visitId: %w", err)
		}
		clinic := random.IntN(len(directory.Clients))
		if i < len(clinics) {
			clinic = clinics[i]
		}
		proposed, sold := pickDevices(random, directory.Devices)
		visits[i] = visit.Visit{
			VisitID:         id.String(),
			ClientID:        directory.Clients[clinic].ID,
			UserID:          userID,
			ProposedDevices: proposed,
			SoldDevices:     sold,
			DateTime:        times[i],
			ClientNotes:     pickNotes(random, 0.6, clientNotes),
			AdditionalNotes: pickNotes(random, 0.3, additionalNotes),
		}
	}
	return visits, nil
}

// spreadTimes returns count distinct, ascending times in the working window.
// The window is cut into count equal slots of whole seconds, or of whole
// milliseconds when seconds are too coarse, with one random time per slot.
func spreadTimes(random *rand.Rand, now time.Time, count int) ([]time.Time, error) {
	start, end := workingWindow(now)
	unit := time.Second
	if end.Sub(start)/time.Duration(count) < unit {
		unit = time.Millisecond
	}
	slot := end.Sub(start) / time.Duration(count) / unit
	if slot < 1 {
		return nil, fmt.Errorf("generate visits: %d visits do not fit between %s and %s", count, start.Format(time.RFC3339), end.Format(time.RFC3339))
	}

	times := make([]time.Time, count)
	for i := range times {
		offset := time.Duration(int64(i)*int64(slot)+random.Int64N(int64(slot))) * unit
		times[i] = start.Add(offset)
	}
	return times, nil
}

// pickDevices proposes 1 to 4 distinct devices and sells each one with a
// probability of one in three. Both slices are non-nil.
func pickDevices(random *rand.Rand, devices []lookupDevice) (proposed, sold []int64) {
	count := 1 + random.IntN(min(maxProposedDevices, len(devices)))
	proposed = make([]int64, 0, count)
	sold = make([]int64, 0, count)
	for _, index := range random.Perm(len(devices))[:count] {
		proposed = append(proposed, devices[index].ID)
		if random.IntN(3) == 0 {
			sold = append(sold, devices[index].ID)
		}
	}
	return proposed, sold
}

// pickNotes returns one of notes with the given probability, else "".
func pickNotes(random *rand.Rand, probability float64, notes []string) string {
	if random.Float64() >= probability {
		return ""
	}
	return notes[random.IntN(len(notes))]
}

// clientNotes are sample notes about the clinic. They mix the customer's
// languages and contain umlauts and accents on purpose, to exercise UTF-8
// handling end to end.
var clientNotes = []string{
	"Dr. Müller möchte nächste Woche eine Vorführung des Pulsoximeters.",
	"Praxis wird im Frühjahr umgebaut; Geräte erst danach bestellen.",
	"Oberärztin zeigte großes Interesse an den Ultraschallköpfen.",
	"Kontakt über Frau Schäfer am Empfang, vormittags gut erreichbar.",
	"Il primario chiede un preventivo per due pompe d'infusione.",
	"Visita breve, riprovare giovedì dopo le 14.",
	"Rendez-vous reporté, le cabinet rappellera après les fêtes.",
	"ECG unit under evaluation; decision expected after the budget meeting.",
	"Bestehender Wartungsvertrag läuft Ende März aus.",
	"Zufrieden mit dem Service, wünscht Schulung für zwei Pflegekräfte.",
}

// additionalNotes are sample follow-up notes of the salesman.
var additionalNotes = []string{
	"Angebot bis Freitag schicken.",
	"Muster-Sonde beim nächsten Besuch mitnehmen.",
	"Rückruf wegen Lieferzeit.",
	"Inviare brochure in italiano.",
	"Follow up in two weeks.",
}
