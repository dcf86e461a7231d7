// Package benchreport turns the output of visitrelay's end-to-end
// benchmarks (go test -bench, in the standard Go benchmark format) into a
// markdown table with the date, the commit and the machine, for
// docs/benchmarks.md.
package benchreport

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// Results are the figures of one benchmark run.
type Results struct {
	// Figures maps a benchmark name without the Benchmark prefix and the
	// GOMAXPROCS suffix, such as "OneNode/spike", to its metrics by unit,
	// such as "accept-p99-ms". A benchmark that ran more than once keeps
	// the figures of its last result.
	Figures map[string]map[string]float64
	// Config holds the configuration lines ("key: value") of the output,
	// such as cpu, postgres and nats-server. A later line overrides an
	// earlier one.
	Config map[string]string
	// Procs is the GOMAXPROCS of the benchmarks, or "" when no result had
	// the suffix.
	Procs string
}

// Value returns the figure of benchmark name in unit.
func (r Results) Value(name, unit string) (float64, bool) {
	v, ok := r.Figures[name][unit]
	return v, ok
}

// Parse reads benchmark output. Lines that are neither results nor
// configuration, such as logs and PASS, are skipped. A malformed result
// line is an error.
func Parse(in io.Reader, fileName string) (Results, error) {
	results := Results{Figures: map[string]map[string]float64{}, Config: map[string]string{}}
	reader := benchfmt.NewReader(in, fileName)
	for reader.Scan() {
		switch record := reader.Result().(type) {
		case *benchfmt.SyntaxError:
			return Results{}, fmt.Errorf("parse benchmark output: %w", record)
		case *benchfmt.Result:
			results.add(record)
		}
	}
	if err := reader.Err(); err != nil {
		return Results{}, fmt.Errorf("read benchmark output %s: %w", fileName, err)
	}
	return results, nil
}

func (r *Results) add(result *benchfmt.Result) {
	base, parts := result.Name.Parts()
	name := string(base)
	for _, part := range parts {
		if strings.HasPrefix(string(part), "-") {
			r.Procs = string(part[1:])
			continue
		}
		name += string(part)
	}

	figures := map[string]float64{}
	for _, v := range result.Values {
		// The reader converts units with "ns" or "MB" in them to base
		// units; the benchmarks' own unit names are kept as written.
		unit, value := v.Unit, v.Value
		if v.OrigUnit != "" {
			unit, value = v.OrigUnit, v.OrigValue
		}
		figures[unit] = value
	}
	r.Figures[name] = figures

	for _, c := range result.Config {
		r.Config[c.Key] = string(c.Value)
	}
}
