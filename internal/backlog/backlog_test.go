package backlog

import "testing"

func TestParseSourceHeader(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   uint64
		wantOK bool
	}{
		{"v2.10 form", "VISITS:fba5d82a 42 > > visits.23.0b6f2f5e-8d52-4f4e-9a61-2f1c3f2d9c10", 42, true},
		{"stream and sequence only", "VISITS 7", 7, true},
		{"empty", "", 0, false},
		{"no sequence", "VISITS", 0, false},
		{"sequence not a number", "VISITS x > >", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseSourceHeader(tt.header)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseSourceHeader(%q) = %d, %t; want %d, %t", tt.header, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
