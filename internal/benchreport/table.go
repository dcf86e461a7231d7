package benchreport

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Names of the benchmarks in e2e/bench_*_test.go, as Results keys them.
const (
	oneNodeStart      = "OneNode/start"
	oneNodeSpike      = "OneNode/spike"
	oneNodeSaturation = "OneNode/saturation"
	clusterSpike      = "Cluster/spike"
	clusterSaturation = "Cluster/saturation"
	backlogDrain      = "BacklogDrain"
)

// expectedBenchmarks are the benchmarks that a full run reports.
var expectedBenchmarks = []string{oneNodeStart, oneNodeSpike, oneNodeSaturation, backlogDrain, clusterSpike, clusterSaturation}

// Cells without a value.
const (
	// notMeasured fills a cell whose benchmark did not report the figure.
	notMeasured = "not measured"
	// notApplicable fills a cell of a figure that the setup of its column
	// does not measure, such as the start-up times on the cluster.
	notApplicable = "—"
)

// row is one line of the table: the figure's description, its value on one
// gateway node and on the cluster, and the target. A nil cell function
// stands for notApplicable.
type row struct {
	figure           string
	oneNode, cluster func(Results) string
	target           string
}

// rows returns the table's rows. The spike's rate and length, the
// saturation step and the backlog size come from the figures, so the table
// of a shortened development run shows its shorter phases.
func rows(r Results) []row {
	spike := spikeConditions(r)
	return []row{
		{"accept latency p50, " + spike + " (post to 201, after the fsynced ack)",
			milliseconds(oneNodeSpike, "accept-p50-ms"), milliseconds(clusterSpike, "accept-p50-ms"), ""},
		{"accept latency p99", milliseconds(oneNodeSpike, "accept-p99-ms"), milliseconds(clusterSpike, "accept-p99-ms"), "< 5 ms"},
		{"accept latency p99.9", milliseconds(oneNodeSpike, "accept-p99.9-ms"), milliseconds(clusterSpike, "accept-p99.9-ms"), ""},
		{"posts accepted / failed during the spike", acceptedFailed(oneNodeSpike), acceptedFailed(clusterSpike), ""},
		{"post-to-stored p50 (`committed_at - accepted_at`)",
			milliseconds(oneNodeSpike, "stored-p50-ms"), milliseconds(clusterSpike, "stored-p50-ms"), ""},
		{"post-to-stored p99", milliseconds(oneNodeSpike, "stored-p99-ms"), milliseconds(clusterSpike, "stored-p99-ms"), "< 100 ms"},
		{"saturation: highest constant rate accepted in full with p99 < 50 ms" + stepConditions(r),
			saturation(oneNodeSaturation), saturation(clusterSaturation), ""},
		{"engine's durable publish rate (32 synchronous publishers)",
			rate(oneNodeSaturation, "engine-publish/s", "publishes/s"), rate(clusterSaturation, "engine-publish/s", "publishes/s"), ""},
		{"saturation / engine", ratio(oneNodeSaturation, "saturation/engine"), ratio(clusterSaturation, "saturation/engine"), "≥ 0.8"},
		{"closed-loop accept rate, 32 clients (p99)", closedLoop(oneNodeSaturation), closedLoop(clusterSaturation), ""},
		{"backlog drain" + backlogConditions(r) + ", sourced and committed",
			rate(backlogDrain, "drain-visits/s", "visits/s"), nil, ""},
		{"plain pgx batch insert of the same rows", rate(backlogDrain, "plain-insert-visits/s", "visits/s"), nil, ""},
		{"drain / plain insert", ratio(backlogDrain, "drain/plain"), nil, "≥ 0.7"},
		{"sourcing alone (until the on-prem stream held the backlog)", rate(backlogDrain, "source-visits/s", "visits/s"), nil, ""},
		{"gateway RSS: idle / peak at start / peak during the spike", memory("gateway", oneNodeStart, oneNodeSpike),
			highestNode(memory("gateway", "", clusterSpike)), "< 64 MiB during the spike"},
		{"appliance RSS: idle / peak at start / peak during the spike", memory("appliance", oneNodeStart, oneNodeSpike), nil, "< 96 MiB during the spike"},
		{"gateway start to ready (process start to /readyz 200)", milliseconds(oneNodeStart, "gateway-ready-ms"), nil, "< 1 s"},
		{"appliance start to ready", milliseconds(oneNodeStart, "appliance-ready-ms"), nil, "< 1 s"},
	}
}

// renderTable writes the table in markdown.
func renderTable(b *strings.Builder, r Results) {
	b.WriteString("| figure | one gateway node | three-node gateway cluster | target |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, row := range rows(r) {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", row.figure, cell(row.oneNode, r), cell(row.cluster, r), row.target)
	}
}

func cell(f func(Results) string, r Results) string {
	if f == nil {
		return notApplicable
	}
	return f(r)
}

// spikeConditions returns "at 30 visits/s for 60 s" from the one-node
// spike's figures, or the cluster's when the one-node spike is missing.
func spikeConditions(r Results) string {
	for _, name := range []string{oneNodeSpike, clusterSpike} {
		visitsPerSecond, ok1 := r.Value(name, "offered-visits/s")
		seconds, ok2 := r.Value(name, "spike-s")
		if ok1 && ok2 {
			return fmt.Sprintf("at %s visits/s for %s s", formatNumber(visitsPerSecond), formatNumber(seconds))
		}
	}
	return "at the spike's rate"
}

// stepConditions returns " (steps of 5 s)" from the saturation figures.
func stepConditions(r Results) string {
	for _, name := range []string{oneNodeSaturation, clusterSaturation} {
		if seconds, ok := r.Value(name, "step-s"); ok {
			return fmt.Sprintf(" (steps of %s s)", formatNumber(seconds))
		}
	}
	return ""
}

// backlogConditions returns " of 100,000 visits" from the drain's figures.
func backlogConditions(r Results) string {
	if n, ok := r.Value(backlogDrain, "visits"); ok {
		return " of " + formatNumber(n) + " visits"
	}
	return ""
}

func milliseconds(name, unit string) func(Results) string {
	return func(r Results) string {
		v, ok := r.Value(name, unit)
		if !ok {
			return notMeasured
		}
		return formatMilliseconds(v)
	}
}

func rate(name, unit, label string) func(Results) string {
	return func(r Results) string {
		v, ok := r.Value(name, unit)
		if !ok {
			return notMeasured
		}
		return formatNumber(v) + " " + label
	}
}

func ratio(name, unit string) func(Results) string {
	return func(r Results) string {
		v, ok := r.Value(name, unit)
		if !ok {
			return notMeasured
		}
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func acceptedFailed(name string) func(Results) string {
	return func(r Results) string {
		accepted, ok1 := r.Value(name, "visits")
		failed, ok2 := r.Value(name, "failed-posts")
		if !ok1 || !ok2 {
			return notMeasured
		}
		return formatNumber(accepted) + " / " + formatNumber(failed)
	}
}

// saturation returns "1,200 visits/s (p99 41 ms)", or a note when no step
// kept the p99 under the limit.
func saturation(name string) func(Results) string {
	return func(r Results) string {
		v, ok1 := r.Value(name, "saturation-visits/s")
		p99, ok2 := r.Value(name, "saturation-p99-ms")
		if !ok1 || !ok2 {
			return notMeasured
		}
		if v == 0 {
			return "no step met the limit"
		}
		// When the highest step held, the gateway's limit lies above it.
		if top, ok := r.Value(name, "saturation-top-step-held"); ok && top == 1 {
			return fmt.Sprintf("≥ %s visits/s (p99 %s, the highest step held)", formatNumber(v), formatMilliseconds(p99))
		}
		return fmt.Sprintf("%s visits/s (p99 %s)", formatNumber(v), formatMilliseconds(p99))
	}
}

func closedLoop(name string) func(Results) string {
	return func(r Results) string {
		v, ok1 := r.Value(name, "closed-loop-accept/s")
		p99, ok2 := r.Value(name, "closed-loop-p99-ms")
		if !ok1 || !ok2 {
			return notMeasured
		}
		return fmt.Sprintf("%s visits/s (%s)", formatNumber(v), formatMilliseconds(p99))
	}
}

// memory returns the RSS cell of side, the gateway or the appliance, such
// as "20.1 / 25.3 / 30.2 MiB": the idle and start-up peak from the benchmark
// named start, and the peak during the spike from the benchmark named
// spike. An empty name means that the setup does not measure those
// figures, which show as notApplicable. A missing figure shows as "?".
func memory(side, start, spike string) func(Results) string {
	return func(r Results) string {
		figures := []struct{ name, unit string }{
			{start, side + "-idle-rss-MiB"},
			{start, side + "-start-peak-rss-MiB"},
			{spike, side + "-spike-peak-rss-MiB"},
		}
		parts := make([]string, len(figures))
		measured := false
		for i, f := range figures {
			if f.name == "" {
				parts[i] = notApplicable
				continue
			}
			v, ok := r.Value(f.name, f.unit)
			if !ok {
				parts[i] = "?"
				continue
			}
			parts[i] = strconv.FormatFloat(v, 'f', 1, 64)
			measured = true
		}
		if !measured {
			return notMeasured
		}
		return strings.Join(parts, " / ") + " MiB"
	}
}

// highestNode appends "(highest node)" to a cluster's memory cell, because
// BenchmarkCluster reports the highest of its nodes' figures.
func highestNode(f func(Results) string) func(Results) string {
	return func(r Results) string {
		v := f(r)
		if v == notMeasured {
			return v
		}
		return v + " (highest node)"
	}
}

// formatMilliseconds keeps two or three significant digits: 0.87 ms,
// 8.4 ms, 42 ms, 1,250 ms.
func formatMilliseconds(v float64) string {
	switch {
	case v < 1:
		return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
	return formatNumber(v) + " ms"
}

// formatNumber rounds v to a whole number with commas between thousands,
// such as 15,682.
func formatNumber(v float64) string {
	digits := strconv.FormatFloat(math.Abs(math.Round(v)), 'f', 0, 64)
	var b strings.Builder
	if v <= -0.5 {
		b.WriteByte('-')
	}
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}
