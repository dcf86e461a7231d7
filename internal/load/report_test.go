package load

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	ms := func(values ...int) []time.Duration {
		out := make([]time.Duration, len(values))
		for i, v := range values {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"no values", nil, 50, 0},
		{"one value p50", ms(7), 50, 7 * time.Millisecond},
		{"one value p99", ms(7), 99, 7 * time.Millisecond},
		{"two values p50", ms(1, 2), 50, 1 * time.Millisecond},
		{"four values p50", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"ten values p90", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"ten values p99", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"hundred values p99", ms(hundred...), 99, 99 * time.Millisecond},
		{"hundred values p90", ms(hundred...), 90, 90 * time.Millisecond},
		{"p0 is the minimum", ms(3, 5), 0, 3 * time.Millisecond},
		{"p100 is the maximum", ms(3, 5), 100, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(p%g) = %s, want %s", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeLatencyUnsortedInput(t *testing.T) {
	input := []time.Duration{40, 10, 30, 20}
	got := summarizeLatency(input)
	want := Latency{Count: 4, P50: 20, P90: 40, P99: 40, Max: 40}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarizeLatency mismatch (-want +got):\n%s", diff)
	}
	if input[0] != 40 {
		t.Errorf("summarizeLatency sorted its input in place: %v", input)
	}
}

func TestReportCheck(t *testing.T) {
	tests := []struct {
		name   string
		report Report
		fail   bool
	}{
		{"all stored", Report{Waited: true, Sent: 5, Accepted: 5, Stored: 5}, false},
		{"lost", Report{Waited: true, Accepted: 5, Stored: 4, Lost: 1}, true},
		{"duplicates", Report{Waited: true, Duplicates: 1}, true},
		{"rejected", Report{Waited: true, Rejected: 1}, true},
		{"unacknowledged", Report{Waited: true, Unacknowledged: 1}, true},
		{"resend failed", Report{Waited: true, ResendsFailed: 1}, true},
		{"rejected without wait", Report{Rejected: 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.report.Check()
			if tt.fail && !errors.Is(err, ErrCheckFailed) {
				t.Errorf("Check() = %v, want ErrCheckFailed", err)
			}
			if !tt.fail && err != nil {
				t.Errorf("Check() = %v, want nil", err)
			}
		})
	}
}

func TestReportWriteLastLine(t *testing.T) {
	tests := []struct {
		name   string
		report Report
		want   string
	}{
		{
			"waited",
			Report{Waited: true, Sent: 700, Accepted: 700, Stored: 699, Duplicates: 2, Lost: 1},
			"visits: sent=700 accepted=700 stored=699 duplicates=2 lost=1",
		},
		{
			"not waited",
			Report{Sent: 10, Accepted: 9},
			"visits: sent=10 accepted=9 stored=0 duplicates=0 lost=0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.report.Write(&out); err != nil {
				t.Fatalf("Write: %v", err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if got := lines[len(lines)-1]; got != tt.want {
				t.Errorf("last line = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewReportLostOnlyWhenWaited(t *testing.T) {
	results := []salesmanResult{{sent: 3, accepted: 3, stored: 1}, {sent: 2, accepted: 1}}
	waited := newReport(Options{WaitStored: time.Second}, results, 0)
	if waited.Lost != 3 {
		t.Errorf("Lost with wait = %d, want 3", waited.Lost)
	}
	if waited.Sent != 5 || waited.Accepted != 4 {
		t.Errorf("Sent, Accepted = %d, %d, want 5, 4", waited.Sent, waited.Accepted)
	}
	notWaited := newReport(Options{}, results, 0)
	if notWaited.Lost != 0 {
		t.Errorf("Lost without wait = %d, want 0", notWaited.Lost)
	}
}
