package appliance

import (
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
