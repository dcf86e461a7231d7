package health

import (
	"os"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	since := time.Now().Add(-time.Minute)
	tests := []struct {
		name        string
		warnings    []Warning
		wantState   State
		wantSummary string
	}{
		{"no warnings", nil, Flowing, "all flowing"},
		{"one warning", []Warning{{Code: CodeDeadLetters, Message: "2 dead letters waiting"}},
			Degraded, "degraded: 2 dead letters waiting"},
		{"warning with since", []Warning{{Code: CodeDatabaseUnreachable, Message: "database unreachable", Since: &since}},
			Degraded, "degraded: database unreachable since " + Clock(since)},
		{"stopping warning first", []Warning{
			{Code: CodeDeadLetters, Message: "1 dead letters waiting"},
			{Code: CodeStoreNotWritable, Message: "store not writable", Stops: true},
		}, Stopped, "stopped: store not writable; 1 dead letters waiting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.warnings)
			if v.State != tt.wantState {
				t.Errorf("state %q, want %q", v.State, tt.wantState)
			}
			if v.Summary != tt.wantSummary {
				t.Errorf("summary %q, want %q", v.Summary, tt.wantSummary)
			}
			if v.Warnings == nil {
				t.Error("warnings are nil; /status.json must show [] for none")
			}
		})
	}
}

func TestDiskUsedPercent(t *testing.T) {
	tests := []struct {
		name string
		disk Disk
		want float64
	}{
		{"empty filesystem", Disk{AvailableBytes: 100, TotalBytes: 100}, 0},
		{"quarter used", Disk{AvailableBytes: 75, TotalBytes: 100}, 25},
		{"unknown size", Disk{}, 0},
		{"more available than total", Disk{AvailableBytes: 120, TotalBytes: 100}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.disk.UsedPercent(); got != tt.want {
				t.Errorf("UsedPercent() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatDiskAndProbe(t *testing.T) {
	dir := t.TempDir()
	disk, err := StatDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	if disk.TotalBytes == 0 || disk.AvailableBytes > disk.TotalBytes {
		t.Errorf("StatDisk(%s) = %+v, want a size and available space below it", dir, disk)
	}
	if err := ProbeWritable(dir); err != nil {
		t.Errorf("ProbeWritable(%s): %v", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("ProbeWritable left %d files behind", len(entries))
	}
	if err := ProbeWritable(dir + "/missing"); err == nil {
		t.Error("ProbeWritable of a missing directory succeeded")
	}
}

func TestRunway(t *testing.T) {
	if got := Runway(1000, 0, 10); got != nil {
		t.Errorf("runway without visits = %v, want nil", *got)
	}
	got := Runway(3000, 100, 10)
	if got == nil || *got != 3 {
		t.Errorf("runway of 3000 bytes at 100 visits of 10 bytes a day = %v, want 3", got)
	}
}
