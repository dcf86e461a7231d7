package visit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type fakeDirectory struct{}

func (fakeDirectory) HasClient(id string) bool { return id == "102" }
func (fakeDirectory) HasDevice(id int64) bool  { return id >= 1 && id <= 10 }

const example = `{"clientId": "102", "userId": "23", "proposedDevices": [1, 2, 5], "soldDevices": [1, 5],
 "dateTime": "2023-09-20T15:45:30Z", "clientNotes": "", "additionalNotes": ""}`

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func TestDecodeCustomerExample(t *testing.T) {
	v, err := Decode([]byte(example))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := Validate(v, "23", fakeDirectory{}, now); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if v.ClientID != "102" || len(v.ProposedDevices) != 3 || len(v.SoldDevices) != 2 {
		t.Errorf("decoded %+v", v)
	}
}

func TestDecodeAndValidateRules(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		field string
	}{
		{"missing clientId", `{"userId":"23","dateTime":"2023-09-20T15:45:30Z"}`, "clientId"},
		{"unknown clinic", `{"clientId":"999","userId":"23","dateTime":"2023-09-20T15:45:30Z"}`, "clientId"},
		{"clientId not a string", `{"clientId":102,"userId":"23","dateTime":"2023-09-20T15:45:30Z"}`, "clientId"},
		{"clientId with a dot", `{"clientId":"1.2","userId":"23","dateTime":"2023-09-20T15:45:30Z"}`, "clientId"},
		{"device not an integer", `{"clientId":"102","userId":"23","proposedDevices":["a"],"dateTime":"2023-09-20T15:45:30Z"}`, "proposedDevices[0]"},
		{"device not in catalog", `{"clientId":"102","userId":"23","proposedDevices":[99],"dateTime":"2023-09-20T15:45:30Z"}`, "proposedDevices"},
		{"repeated device", `{"clientId":"102","userId":"23","proposedDevices":[1,1],"dateTime":"2023-09-20T15:45:30Z"}`, "proposedDevices"},
		{"sold not proposed", `{"clientId":"102","userId":"23","proposedDevices":[1],"soldDevices":[2],"dateTime":"2023-09-20T15:45:30Z"}`, "soldDevices"},
		{"time without offset", `{"clientId":"102","userId":"23","dateTime":"2023-09-20T15:45:30"}`, "dateTime"},
		{"time in the future", `{"clientId":"102","userId":"23","dateTime":"2026-12-05T12:00:00Z"}`, "dateTime"},
		{"time before 2000", `{"clientId":"102","userId":"23","dateTime":"1970-01-01T00:00:00Z"}`, "dateTime"},
		{"notes too long", `{"clientId":"102","userId":"23","dateTime":"2023-09-20T15:45:30Z","clientNotes":"` + strings.Repeat("ä", MaxNotesLength+1) + `"}`, "clientNotes"},
		{"unknown field", `{"clientId":"102","userId":"23","dateTime":"2023-09-20T15:45:30Z","soldDevice":[1]}`, "soldDevice"},
		{"visitId not a UUID", `{"visitId":"abc","clientId":"102","userId":"23","dateTime":"2023-09-20T15:45:30Z"}`, "visitId"},
		{"array body", `[1,2]`, "body"},
		{"trailing data", `{"clientId":"102"} {}`, "body"},
		{"invalid UTF-8", "{\"clientId\":\"\xff\"}", "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Decode([]byte(tt.body))
			if err == nil {
				err = Validate(v, "23", fakeDirectory{}, now)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got error %v, want Errors", err)
			}
			if !errs.Has(tt.field) {
				t.Errorf("errors %v do not name field %q", errs, tt.field)
			}
		})
	}
}

func TestHashIgnoresTimeOffset(t *testing.T) {
	a, _ := Decode([]byte(`{"clientId":"102","userId":"23","dateTime":"2023-09-20T15:45:30Z"}`))
	b, _ := Decode([]byte(`{"clientId":"102","userId":"23","dateTime":"2023-09-20T17:45:30+02:00"}`))
	if a.Hash() != b.Hash() {
		t.Error("the same instant with another offset hashes differently")
	}
	c, _ := Decode([]byte(`{"clientId":"102","userId":"23","dateTime":"2023-09-20T15:45:31Z"}`))
	if a.Hash() == c.Hash() {
		t.Error("a different time hashes alike")
	}
}

func TestDeriveIDIsStable(t *testing.T) {
	v, _ := Decode([]byte(example))
	if DeriveID(v, "") != DeriveID(v, "") {
		t.Error("the derived id changes between calls")
	}
	other := v
	other.ClientID = "103"
	if DeriveID(v, "") == DeriveID(other, "") {
		t.Error("two different visits derive the same id")
	}
	key := "7b0e6a8e-0f6a-4c4b-8d0e-3c8a2e1f9b11"
	if got := DeriveID(v, key); got != key {
		t.Errorf("a UUID Idempotency-Key gives %s, want it unchanged", got)
	}
	if DeriveID(v, "retry-1") != DeriveID(v, "retry-1") || DeriveID(v, "retry-1") == DeriveID(v, "retry-2") {
		t.Error("non-UUID Idempotency-Keys do not map to stable, distinct ids")
	}
}
