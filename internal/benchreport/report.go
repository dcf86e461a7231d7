package benchreport

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Report is one run's section of docs/benchmarks.md.
type Report struct {
	Date    time.Time
	Commit  Commit
	Machine Machine
	Results Results
	// CommitError is the error of ReadCommit, or nil.
	CommitError error
}

// Render returns the report as markdown: a heading with the date and the
// commit, the commit and machine lines, and the table.
func Render(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s, `make bench` at %s\n\n", rep.Date.UTC().Format("2006-01-02 15:04 MST"), rep.Commit.shortName())
	fmt.Fprintf(&b, "- commit: %s\n", rep.commitLine())
	fmt.Fprintf(&b, "- machine: %s\n", rep.Machine.hardwareLine())
	fmt.Fprintf(&b, "- software: %s\n", rep.Machine.softwareLine())
	if missing := rep.missingBenchmarks(); len(missing) > 0 {
		fmt.Fprintf(&b, "- incomplete: no figures from %s\n", strings.Join(missing, ", "))
	}
	b.WriteString("\n")
	renderTable(&b, rep.Results)
	return b.String()
}

func (c Commit) shortName() string {
	if c.Describe == "" {
		return "an unknown commit"
	}
	return "`" + c.Describe + "`"
}

func (rep Report) commitLine() string {
	if rep.CommitError != nil {
		return "unknown: " + rep.CommitError.Error()
	}
	line := "`" + rep.Commit.Hash + "`"
	switch {
	case len(rep.Commit.Changed) == 0:
		return line + ", clean working tree"
	case len(rep.Commit.Changed) == 1:
		return line + ", dirty working tree: " + rep.Commit.Changed[0] + " changed or untracked"
	}
	return fmt.Sprintf("%s, dirty working tree: %d paths changed or untracked", line, len(rep.Commit.Changed))
}

func (m Machine) hardwareLine() string {
	parts := []string{orUnknown(m.CPU, "CPU"), fmt.Sprintf("%d cores", m.Cores)}
	if m.MemoryBytes > 0 {
		parts = append(parts, fmt.Sprintf("%.1f GiB memory", float64(m.MemoryBytes)/(1<<30)))
	}
	if m.OS != "" {
		parts = append(parts, m.OS)
	}
	parts = append(parts, "Linux "+orUnknown(m.Kernel, "kernel"))
	return strings.Join(parts, ", ")
}

func (m Machine) softwareLine() string {
	return strings.Join([]string{
		m.GoVersion,
		"PostgreSQL " + orUnknown(m.PostgreSQL, "version"),
		"nats-server " + orUnknown(m.NATSServer, "version"),
	}, ", ")
}

func orUnknown(value, label string) string {
	if value == "" {
		return "unknown " + label
	}
	return value
}

func (rep Report) missingBenchmarks() []string {
	var missing []string
	for _, name := range expectedBenchmarks {
		if _, ok := rep.Results.Figures[name]; !ok {
			missing = append(missing, name)
		}
	}
	return missing
}

// Run is the visitrelay-benchreport command: it reads the benchmark output
// named by args (a file, or - for stdin), prints the report to stdout and,
// with -append, appends it to a markdown file.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("visitrelay-benchreport", flag.ContinueOnError)
	flags.SetOutput(stdout)
	appendPath := flags.String("append", "", "markdown `file` to append the report to, such as docs/benchmarks.md")
	flags.Usage = func() {
		fmt.Fprintln(stdout, "Usage: visitrelay-benchreport [-append FILE] BENCH_OUTPUT")
		fmt.Fprintln(stdout, "BENCH_OUTPUT is the output of go test -bench on the e2e package, or - for stdin.")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("parse flags: %w", err)
	}
	if flags.NArg() != 1 {
		return fmt.Errorf("parse flags: expected one benchmark output file or -, got %d arguments", flags.NArg())
	}

	results, err := readResults(flags.Arg(0))
	if err != nil {
		return err
	}
	rep := Report{Date: time.Now(), Machine: ReadMachine(results), Results: results}
	rep.Commit, rep.CommitError = ReadCommit(ctx, ".")
	text := Render(rep)

	if _, err := io.WriteString(stdout, text); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if *appendPath == "" {
		return nil
	}
	return appendSection(*appendPath, text)
}

// readResults parses the benchmark output in path, or stdin for "-", and
// returns an error when it holds no result.
func readResults(path string) (Results, error) {
	in := os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return Results{}, fmt.Errorf("open benchmark output: %w", err)
		}
		defer f.Close()
		in = f
	}
	results, err := Parse(in, path)
	if err != nil {
		return Results{}, err
	}
	if len(results.Figures) == 0 {
		return Results{}, fmt.Errorf("read benchmark output %s: no benchmark results in it", path)
	}
	return results, nil
}

// appendSection appends text to the markdown file at path, after a blank
// line.
func appendSection(path, text string) error {
	existing, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("append report: %w", err)
	}
	separator := "\n"
	if len(existing) > 0 && !strings.HasSuffix(string(existing), "\n") {
		separator = "\n\n"
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("append report: %w", err)
	}
	if _, err := f.WriteString(separator + text); err != nil {
		f.Close()
		return fmt.Errorf("append report to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append report to %s: %w", path, err)
	}
	return nil
}
