package visit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to the decoder and validator. Neither
// may panic; every rejection must name a field and a rule; and a visit that
// passes must survive a round trip through JSON with the same hash.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte(`{"clientId":"102","userId":"23","proposedDevices":[1,1],"soldDevices":[9],"dateTime":"2023-09-20T15:45:30+02:00"}`))
	f.Add([]byte(`{"clientId":"102","userId":"23","dateTime":"2023-09-20T15:45:30Z","clientNotes":"'; DROP TABLE visits; --","additionalNotes":"<script>alert(1)</script>"}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Add([]byte(`{"proposedDevices":[` + strings.Repeat("1,", 500) + `1]}`))
	f.Add([]byte("{\"clientNotes\":\"\xc3\x28\"}"))
	f.Add([]byte(`{"visitId":"6D1F3A52-4C1E-4BB7-9C55-0E2F4F3D7A11","clientId":"102","userId":"23","dateTime":"2023-09-20T15:45:30Z"}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := Decode(body)
		if err == nil {
			err = Validate(v, "23", fakeDirectory{}, now)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("rejection %v is not a list of field errors", err)
			}
			for _, fe := range errs {
				if fe.Field == "" || fe.Message == "" {
					t.Fatalf("field error without field or message: %+v", fe)
				}
			}
			return
		}

		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encode accepted visit: %v", err)
		}
		decoded, err := Decode(again)
		if err != nil {
			t.Fatalf("accepted visit does not decode again: %v\n%s", err, again)
		}
		if decoded.Hash() != v.Hash() {
			t.Fatalf("hash changed over a round trip:\n%s", again)
		}
	})
}
