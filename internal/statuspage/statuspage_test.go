package statuspage

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestFormatting(t *testing.T) {
	week := 7 * 24 * 3600.0
	runway := 2.25
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"seconds", duration(42.0), "42 s"},
		{"minutes", duration(125.0), "2 min"},
		{"hours", duration(3*3600.0 + 5*60), "3 h 5 min"},
		{"days", duration(week + 3600), "7 d 1 h"},
		{"nil age", age((*float64)(nil)), "–"},
		{"bytes", formatBytes(uint64(512)), "512 B"},
		{"kibibytes", formatBytes(uint64(1536)), "1.5 KiB"},
		{"count", count(int64(1234567)), "1,234,567"},
		{"negative count", count(int64(-1234)), "-1,234"},
		{"runway", days(&runway), "2.2 days"},
		{"no runway", days((*float64)(nil)), "no visits in the last 24 h"},
		{"rate", rate(12.345), "12.3 / min"},
		{"tiny negative decimal", decimal(-0.0002), "0.0"},
		{"negative decimal", decimal(-1.25), "-1.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestChart(t *testing.T) {
	now := time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC)
	Now = func() time.Time { return now }
	defer func() { Now = time.Now }()

	points := []Point{
		{At: now.Add(-2 * time.Hour), Value: 99}, // outside the hour: not drawn
		{At: now.Add(-time.Hour), Value: 0},
		{At: now.Add(-30 * time.Minute), Value: 10},
		{At: now, Value: 5},
	}
	svg := string(Chart(`visits <waiting>`, points))
	for _, want := range []string{`<polyline class="line" points="8.0,100.0 160.0,16.0 312.0,58.0"/>`,
		`aria-label="visits &lt;waiting&gt;, last hour"`, `>max 10<`} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %s:\n%s", want, svg)
		}
	}
	if empty := string(Chart("none", nil)); strings.Contains(empty, "polyline") {
		t.Errorf("chart without points draws a line:\n%s", empty)
	}
}

func TestParse(t *testing.T) {
	pages := fstest.MapFS{"page.html": {Data: []byte(`{{define "live"}}{{template "verdict" .}}{{end}}`)}}
	tmpl, err := Parse(pages, "page.html")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err = tmpl.ExecuteTemplate(&b, "live", struct {
		State, Summary string
		Warnings       []any
	}{"degraded", "degraded: x", nil})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `class="verdict verdict-degraded"`) {
		t.Errorf("verdict partial rendered %q", b.String())
	}

	broken := fstest.MapFS{"page.html": {Data: []byte(`{{if}}`)}}
	if _, err := Parse(broken, "page.html"); err == nil {
		t.Error("Parse of a broken template succeeded")
	}
}
