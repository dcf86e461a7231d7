package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// validVisitJSON returns a valid visit of anna.berger as a JSON object,
// changed by edit.
func validVisitJSON(edit func(fields map[string]any)) []byte {
	fields := map[string]any{
		"visitId":         uuid.NewString(),
		"clientId":        "101",
		"userId":          "23",
		"proposedDevices": []int64{1, 2, 5},
		"soldDevices":     []int64{1, 5},
		"dateTime":        "2024-05-06T10:00:00+02:00",
		"clientNotes":     "Frau Dr. Huber",
		"additionalNotes": "",
	}
	if edit != nil {
		edit(fields)
	}
	data, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return data
}

// set returns an edit that sets one field.
func set(field string, value any) func(map[string]any) {
	return func(fields map[string]any) { fields[field] = value }
}

// drop returns an edit that removes one field.
func drop(field string) func(map[string]any) {
	return func(fields map[string]any) { delete(fields, field) }
}

// devices returns an edit that sets both device arrays.
func devices(proposed, sold any) func(map[string]any) {
	return func(fields map[string]any) {
		fields["proposedDevices"] = proposed
		fields["soldDevices"] = sold
	}
}

func TestInvalidVisitsRejected(t *testing.T) {
	e := startEnv(t)
	token := e.Login("anna.berger")
	valid := validVisitJSON(nil)
	tooManyDevices := make([]int64, 101)
	for i := range tooManyDevices {
		tooManyDevices[i] = int64(i%10 + 1)
	}

	tests := []struct {
		name        string
		body        []byte
		contentType string // application/json when empty
		wantStatus  int
		wantCode    string
		wantFields  []string
	}{
		{name: "missing clientId", body: validVisitJSON(drop("clientId")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"clientId"}},
		{name: "unknown clinic", body: validVisitJSON(set("clientId", "999")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"clientId"}},
		{name: "clientId with a space", body: validVisitJSON(set("clientId", "10 1")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"clientId"}},
		{name: "missing userId", body: validVisitJSON(drop("userId")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"userId"}},
		{name: "userId of another user", body: validVisitJSON(set("userId", "7")),
			wantStatus: 403, wantCode: "forbidden", wantFields: []string{"userId"}},
		{name: "proposedDevices not an array", body: validVisitJSON(devices("1,2", []int64{})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"proposedDevices"}},
		{name: "device id not an integer", body: validVisitJSON(devices([]any{1, "2"}, []int64{})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"proposedDevices[1]"}},
		{name: "device not in catalog", body: validVisitJSON(devices([]int64{1, 11}, []int64{1})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"proposedDevices"}},
		{name: "more than 100 devices", body: validVisitJSON(devices(tooManyDevices, []int64{})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"proposedDevices"}},
		{name: "repeated proposed device", body: validVisitJSON(devices([]int64{1, 2, 1}, []int64{})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"proposedDevices"}},
		{name: "repeated sold device", body: validVisitJSON(devices([]int64{1, 2}, []int64{1, 1})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"soldDevices"}},
		{name: "sold device not proposed", body: validVisitJSON(devices([]int64{1, 2}, []int64{3})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"soldDevices"}},
		{name: "soldDevices not an array", body: validVisitJSON(devices([]int64{1}, map[string]bool{"1": true})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"soldDevices"}},
		{name: "missing dateTime", body: validVisitJSON(drop("dateTime")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"dateTime"}},
		{name: "dateTime not RFC 3339", body: validVisitJSON(set("dateTime", "20.09.2023 15:45")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"dateTime"}},
		{name: "dateTime without offset", body: validVisitJSON(set("dateTime", "2023-09-20T15:45:30")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"dateTime"}},
		{name: "dateTime as a number", body: validVisitJSON(set("dateTime", 1695224730)),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"dateTime"}},
		{name: "dateTime far in the future", body: validVisitJSON(set("dateTime", time.Now().Add(2*time.Hour).Format(time.RFC3339))),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"dateTime"}},
		{name: "dateTime before 2000", body: validVisitJSON(set("dateTime", "1970-01-01T00:00:00Z")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"dateTime"}},
		{name: "clientNotes over 4000 characters", body: validVisitJSON(set("clientNotes", strings.Repeat("ü", 4001))),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"clientNotes"}},
		{name: "additionalNotes over 4000 characters", body: validVisitJSON(set("additionalNotes", strings.Repeat("x", 4001))),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"additionalNotes"}},
		{name: "NUL in notes", body: validVisitJSON(set("clientNotes", "before\x00after")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"clientNotes"}},
		{name: "notes not a string", body: validVisitJSON(set("additionalNotes", 42)),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"additionalNotes"}},
		{name: "unknown field", body: validVisitJSON(set("soldDevice", []int64{1})),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"soldDevice"}},
		{name: "visitId not a UUID", body: validVisitJSON(set("visitId", "visit-1")),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"visitId"}},
		{name: "visitId without hyphens", body: validVisitJSON(set("visitId", strings.ReplaceAll(uuid.NewString(), "-", ""))),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"visitId"}},
		{name: "visitId not a string", body: validVisitJSON(set("visitId", 17)),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"visitId"}},
		{name: "body not JSON", body: []byte("clientId=101&userId=23"),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"body"}},
		{name: "empty body", body: []byte{},
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"body"}},
		{name: "JSON null", body: []byte("null"),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"body"}},
		{name: "JSON array", body: append(append([]byte("["), valid...), ']'),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"body"}},
		{name: "trailing garbage", body: append(validVisitJSON(nil), " x"...),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"body"}},
		{name: "two objects", body: append(validVisitJSON(nil), validVisitJSON(nil)...),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"body"}},
		{name: "invalid UTF-8", body: []byte(strings.Replace(string(valid), "Huber", "Hub\xffr", 1)),
			wantStatus: 400, wantCode: "invalid_visit", wantFields: []string{"body"}},
		{name: "Content-Type text/plain", body: validVisitJSON(nil), contentType: "text/plain",
			wantStatus: 415, wantCode: "not_json"},
		{name: "Content-Type form", body: validVisitJSON(nil), contentType: "application/x-www-form-urlencoded",
			wantStatus: 415, wantCode: "not_json"},
		{name: "body over 64 KiB", body: validVisitJSON(set("clientNotes", strings.Repeat("x", 65<<10))),
			wantStatus: 413, wantCode: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			contentType := tt.contentType
			if contentType == "" {
				contentType = "application/json"
			}
			resp, err := send(e.URL, http.MethodPost, "/api/v1/visits", token, contentType, tt.body)
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			if resp.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.wantStatus, resp.Body)
			}
			body := decodeError(t, resp)
			if body.Code != tt.wantCode {
				t.Errorf("code %q, want %q", body.Code, tt.wantCode)
			}
			if body.Message == "" {
				t.Errorf("message is empty in %s", resp.Body)
			}
			var fields []string
			for _, fe := range body.Errors {
				fields = append(fields, fe.Field)
				if fe.Message == "" {
					t.Errorf("field %s has an empty message in %s", fe.Field, resp.Body)
				}
			}
			if diff := cmp.Diff(tt.wantFields, fields); diff != "" {
				t.Errorf("fields in errors differ (-want +got):\n%s\nbody: %s", diff, resp.Body)
			}
		})
	}

	// Nothing rejected may reach the stream, and so nothing the database.
	if got := e.CloudStreamMessages(); got != 0 {
		t.Errorf("gateway stream has %d messages after only invalid posts, want 0", got)
	}
	if got := e.CountVisits(); got != 0 {
		t.Errorf("visits table has %d rows after only invalid posts, want 0", got)
	}

	// A valid visit posted now passes the committer after anything published
	// before it, so once it is stored a rejected visit would be stored too.
	var stored postedVisit
	if err := json.Unmarshal(valid, &stored); err != nil {
		t.Fatalf("decode the valid visit: %v", err)
	}
	mustPost(t, e, token, stored, http.StatusCreated)
	e.WaitVisits(1, commitTimeout)
	checkStored(t, e, []postedVisit{stored})
}

func TestVisitIDReuseConflicts(t *testing.T) {
	e := startEnv(t)
	anna := e.Login("anna.berger")
	luca := e.Login("luca.rossi")
	original := postedVisit{
		VisitID: uuid.NewString(), ClientID: "104", UserID: "23",
		ProposedDevices: []int64{3, 1}, SoldDevices: []int64{1},
		DateTime: "2024-05-06T10:00:00+02:00", ClientNotes: "Erstbesuch", AdditionalNotes: "",
	}
	first := mustPost(t, e, anna, original, http.StatusCreated)

	// The same instant written with another offset is the same visit.
	sameInstant := original
	sameInstant.DateTime = "2024-05-06T08:00:00Z"
	if retry := mustPost(t, e, anna, sameInstant, http.StatusOK); !retry.AcceptedAt.Equal(first.AcceptedAt) {
		t.Errorf("retry acceptedAt %s, want the first post's %s", retry.AcceptedAt, first.AcceptedAt)
	}

	otherNotes := original
	otherNotes.ClientNotes = "Zweitbesuch"
	otherUser := original
	otherUser.UserID = "7"
	tests := []struct {
		name  string
		token string
		visit postedVisit
	}{
		{"other notes", anna, otherNotes},
		{"other user", luca, otherUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := postVisit(e.URL, tt.token, tt.visit)
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			if resp.Status != http.StatusConflict {
				t.Fatalf("status %d, want 409: %s", resp.Status, resp.Body)
			}
			if code := decodeError(t, resp).Code; code != "visit_conflict" {
				t.Errorf("code %q, want visit_conflict", code)
			}
		})
	}

	if got := e.CloudStreamMessages(); got != 1 {
		t.Errorf("gateway stream has %d messages, want 1", got)
	}
	e.WaitVisits(1, commitTimeout)
	checkStored(t, e, []postedVisit{original})
}
