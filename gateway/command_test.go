package gateway

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunHelpNeedsNoConfig(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantErr    string // substring of the error; empty for no error
		wantStdout string
		wantStderr string
	}{
		{"help command", []string{"help"}, "", "hash-password", ""},
		{"help flag", []string{"-h"}, "", "", "check-config"},
		{"unknown command", []string{"bogus", "-config", "/nonexistent/gateway.yaml"}, `unknown command "bogus"`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := Run(context.Background(), tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run(%q) = %v, want no error", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
