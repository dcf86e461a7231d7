package benchreport

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

func parseFile(t *testing.T, path string) Results {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	results, err := Parse(f, path)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return results
}

func TestParseKeepsUnitsAndConfig(t *testing.T) {
	results := parseFile(t, filepath.Join("testdata", "bench.txt"))

	for _, c := range []struct {
		name, unit string
		want       float64
	}{
		{"OneNode/spike", "accept-p99.9-ms", 26.58},
		{"OneNode/start", "gateway-idle-rss-MiB", 30.75},
		{"Cluster/saturation", "engine-publish/s", 7676},
		{"Cluster/spike", "gateway-spike-peak-rss-MiB", 47.23},
		{"BacklogDrain", "drain/plain", 0.1861},
	} {
		got, ok := results.Value(c.name, c.unit)
		if !ok {
			t.Errorf("%s %s: missing", c.name, c.unit)
			continue
		}
		if got != c.want {
			t.Errorf("%s %s = %v, want %v", c.name, c.unit, got, c.want)
		}
	}
	if got, want := results.Config["postgres"], "15.20 (Debian 15.20-0+deb12u1), fsync off"; got != want {
		t.Errorf("postgres config = %q, want %q", got, want)
	}
	if got, want := results.Config["nats-server"], "v2.15.3"; got != want {
		t.Errorf("nats-server config = %q, want %q", got, want)
	}
	if results.Procs != "2" {
		t.Errorf("procs = %q, want 2", results.Procs)
	}
}

func TestParseRejectsMalformedResult(t *testing.T) {
	_, err := Parse(strings.NewReader("BenchmarkOneNode/spike-2 1 12 accept-p99-ms oops\n"), "bad.txt")
	if err == nil {
		t.Fatal("parse of a result line without a unit for its last value: want an error")
	}
}

func TestRenderGolden(t *testing.T) {
	rep := Report{
		Date: time.Date(2026, 12, 4, 22, 56, 0, 0, time.UTC),
		Commit: Commit{Describe: "57b5b4c-dirty", Hash: "57b5b4c92765c54f0e4c33b1d7586bcfc0dcc1c1",
			Changed: []string{"docs/benchmarks.md", "e2e/bench_test.go"}},
		Machine: Machine{CPU: "Intel(R) Xeon(R) Processor", Cores: 2, MemoryBytes: 24683792 * 1024,
			OS: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0-28-amd64", GoVersion: "go1.26.8",
			PostgreSQL: "15.20 (Debian 15.20-0+deb12u1), fsync off", NATSServer: "v2.15.3"},
		Results: parseFile(t, filepath.Join("testdata", "bench.txt")),
	}
	got := Render(rep)

	golden := filepath.Join("testdata", "report.golden.md")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("report differs from %s (-want +got):\n%s", golden, diff)
	}
}

func TestRenderMarksMissingBenchmarks(t *testing.T) {
	results, err := Parse(strings.NewReader("BenchmarkBacklogDrain-2 1 5 ns/op 2719 drain-visits/s\n"), "partial.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := Render(Report{CommitError: errors.New("git describe failed"), Results: results})

	for _, want := range []string{
		"- incomplete: no figures from OneNode/start, OneNode/spike, OneNode/saturation, Cluster/spike, Cluster/saturation",
		"| accept latency p99 | not measured | not measured | < 5 ms |",
		"2,719 visits/s",
		"- commit: unknown: git describe failed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestMemoryCells(t *testing.T) {
	const (
		startOutput = "BenchmarkOneNode/start-2 1 5 ns/op 30.75 gateway-idle-rss-MiB 30.80 gateway-start-peak-rss-MiB\n"
		spikeOutput = "BenchmarkOneNode/spike-2 1 5 ns/op 41.08 gateway-spike-peak-rss-MiB\n"
		// The cluster's spike reports the highest peak of its nodes.
		clusterOutput = "BenchmarkCluster/spike-2 1 5 ns/op 47.23 gateway-spike-peak-rss-MiB\n"
	)
	for _, c := range []struct {
		name, output             string
		wantOneNode, wantCluster string
	}{
		{"every figure", startOutput + spikeOutput + clusterOutput, "30.8 / 30.8 / 41.1 MiB", "— / — / 47.2 MiB (highest node)"},
		{"no start figures", spikeOutput + clusterOutput, "? / ? / 41.1 MiB", "— / — / 47.2 MiB (highest node)"},
		{"no spike figures", startOutput, "30.8 / 30.8 / ? MiB", notMeasured},
		{"no figures", "", notMeasured, notMeasured},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Parse(strings.NewReader(c.output), "memory.txt")
			if err != nil {
				t.Fatal(err)
			}
			if got := memory("gateway", oneNodeStart, oneNodeSpike)(r); got != c.wantOneNode {
				t.Errorf("one-node cell = %q, want %q", got, c.wantOneNode)
			}
			if got := highestNode(memory("gateway", "", clusterSpike))(r); got != c.wantCluster {
				t.Errorf("cluster cell = %q, want %q", got, c.wantCluster)
			}
		})
	}
}

func TestFormatNumber(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {999.4, "999"}, {999.5, "1,000"}, {15682, "15,682"}, {1234567, "1,234,567"}, {-1500, "-1,500"},
	} {
		if got := formatNumber(c.in); got != c.want {
			t.Errorf("formatNumber(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAppendSectionSeparatesWithBlankLine(t *testing.T) {
	for _, c := range []struct {
		name, existing, want string
	}{
		{"ends with newline", "# Benchmarks\n", "# Benchmarks\n\n## run\n"},
		{"ends without newline", "# Benchmarks", "# Benchmarks\n\n## run\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "benchmarks.md")
			if err := os.WriteFile(path, []byte(c.existing), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := appendSection(path, "## run\n"); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("file = %q, want %q", got, c.want)
			}
		})
	}
}

func TestSaturationCell(t *testing.T) {
	const name = "BenchmarkOneNode/saturation"
	tests := []struct {
		name    string
		figures map[string]float64
		want    string
	}{
		{"a step above failed", map[string]float64{"saturation-visits/s": 2363, "saturation-p99-ms": 41.7, "saturation-top-step-held": 0},
			"2,363 visits/s (p99 42 ms)"},
		{"highest step held", map[string]float64{"saturation-visits/s": 2911, "saturation-p99-ms": 30, "saturation-top-step-held": 1},
			"≥ 2,911 visits/s (p99 30 ms, the highest step held)"},
		{"no step held", map[string]float64{"saturation-visits/s": 0, "saturation-p99-ms": 0}, "no step met the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Results{Figures: map[string]map[string]float64{name: tt.figures}}
			if got := saturation(name)(r); got != tt.want {
				t.Errorf("saturation cell %q, want %q", got, tt.want)
			}
		})
	}
}
