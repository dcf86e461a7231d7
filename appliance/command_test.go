package appliance

import (
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		args     []string
		command  string
		leftover []string
	}{
		{nil, "run", nil},
		{[]string{"-config", "x"}, "run", []string{"-config", "x"}},
		{[]string{"check-config", "-config", "x"}, "check-config", []string{"-config", "x"}},
		{[]string{"import", "clients", "-config", "x", "a.csv"}, "import clients", []string{"-config", "x", "a.csv"}},
		{[]string{"replay-archive", "-config", "x", "a.gz", "b.gz"}, "replay-archive", []string{"-config", "x", "a.gz", "b.gz"}},
		{[]string{"deadletters", "replay", "-all"}, "deadletters replay", []string{"-all"}},
		{[]string{"user", "-config", "x"}, "user", []string{"-config", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			command, leftover := splitCommand(tt.args)
			if command != tt.command {
				t.Errorf("command %q, want %q", command, tt.command)
			}
			if diff := cmp.Diff(tt.leftover, leftover); diff != "" {
				t.Errorf("leftover args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseInterleavedFlags(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	id := fs.String("id", "", "")
	name := fs.String("name", "", "")
	positional, err := parseInterleaved(fs, []string{"anna.berger", "-id", "23", "-name", "Anna Berger", "extra"})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if *id != "23" || *name != "Anna Berger" {
		t.Errorf("flags after a positional argument not parsed: id %q, name %q", *id, *name)
	}
	if diff := cmp.Diff([]string{"anna.berger", "extra"}, positional); diff != "" {
		t.Errorf("positional (-want +got):\n%s", diff)
	}
}
