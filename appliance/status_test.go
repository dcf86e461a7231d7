package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/visitrelay/visitrelay/internal/health"
)

func TestHistoryRate(t *testing.T) {
	start := time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC)
	var h history
	for i := range 100 {
		// 6 commits every 10 s: 36 a minute.
		h.add(start.Add(time.Duration(i)*historyInterval), 0, int64(6*i))
	}
	now := start.Add(99 * historyInterval)
	if got := h.rate(now, time.Minute, 6*99); got != 36 {
		t.Errorf("rate over 1 minute = %v, want 36", got)
	}
	if got := h.rate(now, 15*time.Minute, 6*99); got != 36 {
		t.Errorf("rate over 15 minutes = %v, want 36", got)
	}

	var fresh history
	fresh.add(start, 0, 0)
	if got := fresh.rate(start.Add(500*time.Millisecond), time.Minute, 3); got != 0 {
		t.Errorf("rate half a second after the first sample = %v, want 0", got)
	}
	if got := fresh.rate(start.Add(30*time.Second), time.Minute, 3); got != 6 {
		t.Errorf("rate 30 s after the first sample with 3 commits = %v, want 6", got)
	}
}

func TestHistoryKeepsOneHour(t *testing.T) {
	start := time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC)
	var h history
	for i := range 3 * historyLength {
		h.add(start.Add(time.Duration(i)*historyInterval), uint64(i), 0)
		// A second sample within the interval is dropped.
		h.add(start.Add(time.Duration(i)*historyInterval+time.Second), 999999, 0)
	}
	st := h.status()
	if len(st.Samples) != historyLength {
		t.Fatalf("history keeps %d samples, want %d", len(st.Samples), historyLength)
	}
	if span := st.Samples[len(st.Samples)-1].At.Sub(st.Samples[0].At); span != time.Hour {
		t.Errorf("history spans %s, want 1h", span)
	}
	for _, s := range st.Samples {
		if s.Pending == 999999 {
			t.Fatal("history kept a sample taken within the interval")
		}
	}
}

func TestClassifyDatabaseError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unknown clinic", &pgconn.PgError{Code: "23503"}, errorClassContent},
		{"hash mismatch", fmt.Errorf("insert: %w", errHashMismatch), errorClassContent},
		{"deadline", fmt.Errorf("commit: %w", context.DeadlineExceeded), errorClassTimeout},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, errorClassUnavailable},
		{"connection lost", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), errorClassUnavailable},
		{"missing privilege", &pgconn.PgError{Code: "42501"}, errorClassOther},
		{"plain error", errors.New("boom"), errorClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyDatabaseError(tt.err); got != tt.want {
				t.Errorf("classifyDatabaseError(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestApplianceWarnings(t *testing.T) {
	now := time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC)
	healthy := func() Status {
		return Status{
			Leafnode: LeafnodeStatus{Connected: true},
			Database: DatabaseStatus{Reachable: true},
			Store:    StoreStatus{JetStreamHealthy: true, Writable: true, FilesystemUsedPercent: 40},
		}
	}
	skew, runway := 90.0, 1.5
	old := &PendingVisit{Hop: hopSource, AcceptedAt: now.Add(-time.Hour)}
	tests := []struct {
		name  string
		edit  func(*Status)
		codes []string
		state health.State
	}{
		{"healthy", func(*Status) {}, nil, health.Flowing},
		{"database down", func(s *Status) { s.Database.Reachable = false; s.Database.Since = now }, []string{health.CodeDatabaseUnreachable}, health.Degraded},
		{"commits failing", func(s *Status) { s.Database.CommitsFailingSince = &now }, []string{health.CodeDatabaseFailing}, health.Degraded},
		{"schema outdated", func(s *Status) { s.Database.SchemaOutdated = true }, []string{health.CodeSchemaOutdated}, health.Degraded},
		{"link down", func(s *Status) { s.Leafnode.Connected = false }, []string{health.CodeLeafnodeDown}, health.Degraded},
		{"dead letters", func(s *Status) { s.DeadLetters.Count = 2 }, []string{health.CodeDeadLetters}, health.Degraded},
		{"disk full", func(s *Status) { s.Store.FilesystemUsedPercent = 85 }, []string{health.CodeStoreFull}, health.Degraded},
		{"max store full", func(s *Status) { s.Store.UsedPercent = 90 }, []string{health.CodeStoreFull}, health.Degraded},
		{"clock skew", func(s *Status) { s.Cloud.ClockSkewSeconds = &skew }, []string{health.CodeClockSkew}, health.Degraded},
		{"runway low", func(s *Status) { s.Cloud.RunwayDays = &runway }, []string{health.CodeRunwayLow}, health.Degraded},
		{"old visit", func(s *Status) { s.OldestNotStored = old }, []string{health.CodeVisitsDelayed}, health.Degraded},
		{"store not writable", func(s *Status) { s.Store.Writable = false }, []string{health.CodeStoreNotWritable}, health.Stopped},
		{"jetstream down", func(s *Status) { s.Store.JetStreamHealthy = false }, []string{health.CodeJetStreamDown}, health.Stopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := healthy()
			tt.edit(&st)
			ws := applianceWarnings(st, now)
			var codes []string
			for _, w := range ws {
				codes = append(codes, w.Code)
			}
			if fmt.Sprint(codes) != fmt.Sprint(tt.codes) {
				t.Errorf("warnings %v, want %v", codes, tt.codes)
			}
			if got := health.Judge(ws).State; got != tt.state {
				t.Errorf("verdict %q, want %q", got, tt.state)
			}
		})
	}
}

func TestJudgeTrace(t *testing.T) {
	at := time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC)
	done := func(name string) TraceStep {
		return TraceStep{Name: name, Title: name, State: StepDone, At: &at, Detail: name + " detail"}
	}
	no := func(name string) TraceStep { return TraceStep{Name: name, Title: name, State: StepNo} }
	unknown := func(name string) TraceStep {
		return TraceStep{Name: name, Title: name, State: StepUnknown, Detail: "did not answer"}
	}
	tests := []struct {
		name  string
		steps [6]TraceStep // accepted, sourced, committed, receipt, dead letter, discarded
		stage string
	}{
		{"committed", [6]TraceStep{done("a"), done("s"), done("c"), done("r"), no("d"), no("x")}, StageCommitted},
		{"dead letter", [6]TraceStep{done("a"), done("s"), no("c"), no("r"), done("d"), no("x")}, StageDeadLetter},
		{"discarded", [6]TraceStep{done("a"), done("s"), no("c"), no("r"), no("d"), done("x")}, StageDiscarded},
		{"on-prem", [6]TraceStep{done("a"), done("s"), no("c"), no("r"), no("d"), no("x")}, StageOnPrem},
		{"cloud only", [6]TraceStep{done("a"), no("s"), no("c"), no("r"), no("d"), no("x")}, StageCloud},
		{"cloud not answering", [6]TraceStep{unknown("a"), no("s"), no("c"), no("r"), no("d"), no("x")}, StageNotFound},
		{"nowhere", [6]TraceStep{no("a"), no("s"), no("c"), no("r"), no("d"), no("x")}, StageNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.steps
			stage, summary := judgeTrace(s[0], s[1], s[2], s[3], s[4], s[5])
			if stage != tt.stage {
				t.Errorf("stage %q (%s), want %q", stage, summary, tt.stage)
			}
			if summary == "" {
				t.Error("empty summary")
			}
		})
	}
}

func TestTraceRejectsInvalidID(t *testing.T) {
	for _, id := range []string{"", "visits.>", "*", "0b6f2f5e-8d52-4f4e-9a61"} {
		if _, err := (tracer{}).trace(context.Background(), id); !errors.Is(err, ErrInvalidVisitID) {
			t.Errorf("trace(%q) error %v, want ErrInvalidVisitID", id, err)
		}
	}
}
