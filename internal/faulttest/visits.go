package faulttest

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Visit is a visit as a phone posts it, with a visitId the phone chose.
type Visit struct {
	VisitID         string  `json:"visitId"`
	ClientID        string  `json:"clientId"`
	UserID          string  `json:"userId"`
	ProposedDevices []int64 `json:"proposedDevices"`
	SoldDevices     []int64 `json:"soldDevices"`
	DateTime        string  `json:"dateTime"`
	ClientNotes     string  `json:"clientNotes"`
	AdditionalNotes string  `json:"additionalNotes"`
}

// JSON encodes v as a phone's JSON.stringify does, without escaping <, >
// and &.
func (v Visit) JSON() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A struct of strings and integers always encodes.
	_ = enc.Encode(v)
	return buf.Bytes()
}

// notes are sample notes that a database or a page could mangle: umlauts,
// quotes, SQL and HTML lookalikes, and characters outside the Basic
// Multilingual Plane.
var notes = []string{
	"",
	"",
	"Grüße an Frau Dr. Müller: Gerät läuft, Größe ÄÖÜ ß",
	"Robert'); DROP TABLE visits;--",
	`<script>alert("x")</script> & <b>bold</b>`,
	"line one\nline two\ttab \"quoted\" \\ backslash",
	"stethoscope 🩺 and 日本語",
}

// zones are the offsets phones write dateTime with.
var zones = []*time.Location{
	time.UTC,
	time.FixedZone("CEST", 2*3600),
	time.FixedZone("NST", -(3*3600 + 30*60)),
	time.FixedZone("NPT", 5*3600+45*60),
}

// NewVisits returns n valid visits with fresh visitIds, spread over the
// fixture users, dated up to 30 days back, with content drawn from rng.
func NewVisits(rng *rand.Rand, n int) []Visit {
	visits := make([]Visit, n)
	for i := range visits {
		ago := time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))
		visits[i] = NewVisit(rng, Users[i%len(Users)].ID, time.Now().Add(-ago))
	}
	return visits
}

// NewVisit returns a valid visit of userID at the given time, written with
// millisecond precision as a browser's Date.toISOString does.
func NewVisit(rng *rand.Rand, userID string, at time.Time) Visit {
	devices := slices.Clone(Devices)
	rng.Shuffle(len(devices), func(i, j int) { devices[i], devices[j] = devices[j], devices[i] })
	proposed := devices[:rng.IntN(5)]
	sold := []int64{}
	for _, id := range proposed {
		if rng.IntN(2) == 0 {
			sold = append(sold, id)
		}
	}
	at = at.Truncate(time.Millisecond).In(zones[rng.IntN(len(zones))])
	return Visit{
		VisitID:         uuid.NewString(),
		ClientID:        Clinics[rng.IntN(len(Clinics))],
		UserID:          userID,
		ProposedDevices: slices.Clone(proposed),
		SoldDevices:     sold,
		DateTime:        at.Format("2006-01-02T15:04:05.000Z07:00"),
		ClientNotes:     notes[rng.IntN(len(notes))],
		AdditionalNotes: notes[rng.IntN(len(notes))],
	}
}

// WithLongNotes returns v with both notes at the maximum length of 4,000
// characters of 4 bytes each, so that a visit takes about 32 KB of stream.
func WithLongNotes(v Visit) Visit {
	v.ClientNotes = strings.Repeat("🩺", 4000)
	v.AdditionalNotes = strings.Repeat("𝄞", 4000)
	return v
}
