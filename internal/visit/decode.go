package visit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on a posted visit. They bound memory and storage per visit; the
// customer's visits use a handful of devices and a few lines of notes.
const (
	MaxNotesLength = 4000 // characters, per notes field
	MaxDevices     = 100  // entries, per device array
	MaxIDLength    = 64   // characters, for clientId and userId
)

// knownFields is the set of JSON keys a v1 visit may carry. Unknown keys are
// rejected so that a typo such as "soldDevice" does not silently drop data.
var knownFields = map[string]bool{
	"visitId": true, "clientId": true, "userId": true, "proposedDevices": true,
	"soldDevices": true, "dateTime": true, "clientNotes": true, "additionalNotes": true,
}

// Decode parses a posted JSON body into a Visit. It checks types and shapes
// only; Validate checks the rules that need the directory and the clock.
// Every problem found is returned together as Errors.
func Decode(body []byte) (Visit, error) {
	var v Visit
	var errs Errors

	if !utf8.Valid(body) {
		errs.add("body", "is not valid UTF-8")
		return v, errs
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		errs.add("body", "must be one JSON object: %s", describeJSONError(err))
		return v, errs
	}
	if dec.More() {
		errs.add("body", "must contain exactly one JSON object")
		return v, errs
	}

	for _, key := range slices.Sorted(maps.Keys(raw)) {
		switch {
		case key == "":
			errs.add("body", "contains a field with an empty name")
		case !knownFields[key]:
			errs.add(truncate(key, 40), "is not a field of a visit")
		}
	}
	v.VisitID = decodeString(raw, "visitId", false, &errs)
	v.ClientID = decodeString(raw, "clientId", true, &errs)
	v.UserID = decodeString(raw, "userId", true, &errs)
	v.ProposedDevices = decodeDevices(raw, "proposedDevices", &errs)
	v.SoldDevices = decodeDevices(raw, "soldDevices", &errs)
	v.DateTime = decodeTime(raw, "dateTime", &errs)
	v.ClientNotes = decodeString(raw, "clientNotes", false, &errs)
	v.AdditionalNotes = decodeString(raw, "additionalNotes", false, &errs)

	checkShapes(&v, &errs)
	if len(errs) > 0 {
		return v, errs
	}
	return v, nil
}

func describeJSONError(err error) string {
	if err == nil {
		return "got null"
	}
	return err.Error()
}

func decodeString(raw map[string]json.RawMessage, field string, required bool, errs *Errors) string {
	data, ok := raw[field]
	if !ok || string(data) == "null" {
		if required {
			errs.add(field, "is required")
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		errs.add(field, "must be a string")
		return ""
	}
	return s
}

func decodeDevices(raw map[string]json.RawMessage, field string, errs *Errors) []int64 {
	data, ok := raw[field]
	if !ok || string(data) == "null" {
		return []int64{}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		errs.add(field, "must be an array of device ids (integers)")
		return []int64{}
	}
	if len(items) > MaxDevices {
		errs.add(field, "must have at most %d entries, got %d", MaxDevices, len(items))
		return []int64{}
	}
	ids := make([]int64, 0, len(items))
	for i, item := range items {
		var id int64
		if err := json.Unmarshal(item, &id); err != nil {
			errs.add(fmt.Sprintf("%s[%d]", field, i), "must be an integer device id, got %s", truncate(string(item), 40))
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

func decodeTime(raw map[string]json.RawMessage, field string, errs *Errors) time.Time {
	s := decodeString(raw, field, true, errs)
	if s == "" {
		if !errs.Has(field) {
			errs.add(field, "is required")
		}
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		errs.add(field, "must be an RFC 3339 time with offset, such as 2023-09-20T15:45:30Z, got %q", truncate(s, 40))
		return time.Time{}
	}
	return t
}

// checkShapes applies the rules that need nothing but the visit itself.
func checkShapes(v *Visit, errs *Errors) {
	if v.VisitID != "" {
		id, err := uuid.Parse(v.VisitID)
		if err != nil || len(v.VisitID) != 36 {
			errs.add("visitId", "must be a UUID such as 0b6f2f5e-8d52-4f4e-9a61-2f1c3f2d9c10")
		} else {
			v.VisitID = id.String()
		}
	}
	checkID("clientId", v.ClientID, errs)
	checkID("userId", v.UserID, errs)
	checkNotes("clientNotes", v.ClientNotes, errs)
	checkNotes("additionalNotes", v.AdditionalNotes, errs)
	checkDevices(v, errs)
}

func checkID(field, value string, errs *Errors) {
	if value == "" || errs.Has(field) {
		return
	}
	if len(value) > MaxIDLength {
		errs.add(field, "must be at most %d characters", MaxIDLength)
		return
	}
	if !IsToken(value) {
		errs.add(field, "may contain only letters, digits, '-' and '_', got %q", truncate(value, 40))
	}
}

func checkNotes(field, value string, errs *Errors) {
	if n := utf8.RuneCountInString(value); n > MaxNotesLength {
		errs.add(field, "must be at most %d characters, got %d", MaxNotesLength, n)
	}
	if strings.ContainsRune(value, 0) {
		errs.add(field, "must not contain a NUL character")
	}
}

func checkDevices(v *Visit, errs *Errors) {
	proposed := make(map[int64]bool, len(v.ProposedDevices))
	for _, id := range v.ProposedDevices {
		if proposed[id] {
			errs.add("proposedDevices", "lists device %d more than once", id)
		}
		proposed[id] = true
	}
	sold := make(map[int64]bool, len(v.SoldDevices))
	for _, id := range v.SoldDevices {
		if sold[id] {
			errs.add("soldDevices", "lists device %d more than once", id)
		}
		sold[id] = true
		if !proposed[id] && !errs.Has("proposedDevices") {
			errs.add("soldDevices", "device %d must also be in proposedDevices", id)
		}
	}
}

// IsToken reports whether s is a non-empty identifier made of letters,
// digits, '-' and '_'. Identifiers of this form are safe in NATS subjects and
// key-value keys, which is where user and clinic ids end up.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
