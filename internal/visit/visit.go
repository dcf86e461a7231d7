// Package visit defines a clinic visit as the API receives it and as the
// stream carries it, and the rules a visit must satisfy before it is accepted.
package visit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Visit is one clinic visit in API v1 form. Field names follow the
// customer's existing payload.
type Visit struct {
	VisitID         string    `json:"visitId"`
	ClientID        string    `json:"clientId"`
	UserID          string    `json:"userId"`
	ProposedDevices []int64   `json:"proposedDevices"`
	SoldDevices     []int64   `json:"soldDevices"`
	DateTime        time.Time `json:"dateTime"`
	ClientNotes     string    `json:"clientNotes"`
	AdditionalNotes string    `json:"additionalNotes"`
}

// Envelope is the stream message the gateway publishes: the visit plus the
// gateway's own record of when it accepted it. The phone's clock and the
// gateway's clock are both kept because a phone's clock may be wrong.
type Envelope struct {
	Visit
	AcceptedAt time.Time `json:"acceptedAt"`
	// ContentHash identifies the visit's content, so that a retry with the
	// same visitId is distinguished from a conflicting post.
	ContentHash string `json:"contentHash"`
}

// Hash returns a hex SHA-256 of the visit's content in canonical form. Two
// posts of the same visit hash alike even if the phone wrote the time with a
// different offset or the device arrays with a different JSON spacing.
func (v Visit) Hash() string {
	canonical := v
	canonical.DateTime = v.DateTime.UTC()
	if canonical.ProposedDevices == nil {
		canonical.ProposedDevices = []int64{}
	}
	if canonical.SoldDevices == nil {
		canonical.SoldDevices = []int64{}
	}

	// Marshalling a struct of plain fields cannot fail.
	b, _ := json.Marshal(canonical)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
